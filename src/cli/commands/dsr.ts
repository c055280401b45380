import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { AuditLog } from '../../audit/index.js';
import type { DsrDesk, DsrRecord } from '../../compliance/index.js';
import { InputError } from '../../errors/index.js';
import { report, withCommonOptions, type CommonOptions } from '../context.js';
import { callAdmin, currentLogin, localOperator } from '../login.js';
import { withCatalog } from './app.js';

interface CreateOptions extends CommonOptions {
  kind: string;
  regime: string;
  contact?: string;
  email?: string;
  set?: string[];
}

interface ShowOptions extends CommonOptions {
  export?: string;
  report?: string;
}

/** The DSR desk over the data dir, as the unverified local operator (no login). */
async function withDesk<T>(
  options: CommonOptions,
  work: (desk: DsrDesk, audit: AuditLog) => Promise<T>,
): Promise<T> {
  const [{ createCatalog }, { createEmbeddedCrm, createFieldKeys }, { complianceDesk }] = await Promise.all([
    import('../../catalog/index.js'),
    import('../../crm/index.js'),
    import('../../server/index.js'),
  ]);
  return withCatalog(options, (session) =>
    work(
      complianceDesk({
        config: session.config,
        db: session.store.db,
        audit: session.audit,
        crm: createEmbeddedCrm(session.store.db, createFieldKeys(session.store.db, session.secrets)),
        secrets: session.secrets,
        catalog: createCatalog(session.store.db),
      }),
      session.audit,
    ),
  );
}

/** As the logged-in user through the admin API, else locally as the unverified operator. */
async function act<T>(
  options: CommonOptions,
  remote: (
    call: (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<Record<string, unknown>>,
  ) => Promise<unknown>,
  local: (desk: DsrDesk, audit: AuditLog) => Promise<T>,
): Promise<unknown> {
  const login = await currentLogin(options);
  if (login === undefined) return withDesk(options, local);
  return remote((method, path, body) => callAdmin(login, method, path, body));
}

export function registerDsrCommands(program: Command): void {
  const dsr = program
    .command('dsr')
    .description('data-subject requests: access/export, deletion, rectification (GDPR, CCPA)');

  withCommonOptions(
    dsr
      .command('create')
      .description('file a request; it fans out to the CRM, the app store and apps keeping copies at once')
      .requiredOption('--kind <kind>', 'access, deletion or rectification')
      .option('--regime <regime>', 'gdpr (due in 30 days) or ccpa (45)', 'gdpr')
      .option('--contact <id>', 'the subject by CRM contact id')
      .option('--email <address>', 'the subject by e-mail address')
      .option('--set <field=value...>', 'rectification: a contact field to set (repeatable)'),
  ).action(async (options: CreateOptions) => {
    const body = {
      kind: options.kind,
      regime: options.regime,
      ...(options.contact === undefined ? {} : { contact_id: options.contact }),
      ...(options.email === undefined ? {} : { email: options.email }),
      ...(options.set === undefined ? {} : { changes: changesOf(options.set) }),
    };
    const { parseDsrRequest } = await import('../../compliance/index.js');
    const request = parseDsrRequest(body);
    const created = (await act(
      options,
      (call) => call('POST', '/admin/v1/dsr', body),
      (desk) => desk.create(request, localOperator.id),
    )) as DsrRecord;
    report(options, describe(created), created);
  });

  withCommonOptions(
    dsr
      .command('list')
      .description('list requests, newest state first')
      .option('--state <state>', 'in_progress, waiting, escalated or completed'),
  ).action(async (options: CommonOptions & { state?: string }) => {
    const query = options.state === undefined ? '' : `?state=${encodeURIComponent(options.state)}`;
    const page = (await act(
      options,
      (call) => call('GET', `/admin/v1/dsr${query}`),
      (desk) => desk.list(options.state === undefined ? {} : { state: options.state }),
    )) as { records: DsrRecord[] };
    report(
      options,
      page.records.length === 0
        ? 'no data-subject requests'
        : page.records
            .map(
              (r) =>
                `${r.id}  ${r.kind.padEnd(13)} ${r.regime}  ${r.state.padEnd(11)} due ${r.due_at}  ${r.subject}`,
            )
            .join('\n'),
      page,
    );
  });

  withCommonOptions(
    dsr
      .command('show')
      .description('one request: state, due date, each step and webhook')
      .argument('<id>', 'the request id')
      .option('--export <file>', "write the subject's data (access requests) to this JSON file")
      .option(
        '--report <file>',
        'write the closing report (verify it with gatehouse compliance verify-report)',
      ),
  ).action(async (id: string, options: ShowOptions) => {
    const path = `/admin/v1/dsr/${encodeURIComponent(id)}`;
    const found = (await act(
      options,
      (call) => call('GET', path),
      (desk) => desk.get(id),
    )) as DsrRecord;
    const lines = [describe(found)];
    if (options.export) {
      const exported = await act(
        options,
        (call) => call('GET', `${path}/export`),
        (desk) => desk.exportOf(id),
      );
      await writeFile(options.export, `${JSON.stringify(exported, null, 2)}\n`, { mode: 0o600 });
      lines.push(`wrote the subject's export to ${options.export}`);
    }
    if (options.report) {
      const built = await act(
        options,
        (call) => call('GET', `${path}/report`),
        async (desk, audit) => {
          const { buildComplianceReport } = await import('../../compliance/index.js');
          const closing = await desk.closing(id);
          return buildComplianceReport(audit, {
            kind: 'dsr',
            subject: `data-subject request ${id}`,
            runs: [closing],
          });
        },
      );
      await writeFile(options.report, `${JSON.stringify(built, null, 2)}\n`, { mode: 0o600 });
      lines.push(`wrote the closing report to ${options.report}`);
    }
    report(options, lines.join('\n'), found);
  });
}

function describe(r: DsrRecord): string {
  return [
    `${r.id}: ${r.kind} (${r.regime}) of ${r.subject}, ${r.state}; due ${r.due_at}`,
    ...r.steps.map((s) => `  ${s.step}: ${s.state} — ${s.detail}`),
    ...r.webhooks.map(
      (h) =>
        `  webhook ${h.app_id}: ${h.state} (${h.detail}, ${h.attempts} attempt${h.attempts === 1 ? '' : 's'})`,
    ),
    ...(r.close_event_index === undefined
      ? []
      : [`  closed ${r.closed_at}; closing event ${r.close_event_index}`]),
  ].join('\n');
}

function changesOf(pairs: readonly string[]): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InputError('--set takes field=value');
    changes[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return changes;
}
