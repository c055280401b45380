import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { AuditLog } from '../../audit/index.js';
import type { Config } from '../../config/index.js';
import type { CrmConnector } from '../../crm/index.js';
import type { Db } from '../../store/index.js';
import { InputError } from '../../errors/index.js';
import { commandConfig, report, withCommonOptions, withSecrets, type CommonOptions } from '../context.js';
import { withCatalog } from './app.js';
import { registerRunbookCommand } from './runbook.js';

interface PurgeOptions extends CommonOptions {
  now?: boolean;
}

interface ReportOptions extends CommonOptions {
  since: string;
  out: string;
}

interface VerifyOptions extends CommonOptions {
  publicKey?: string;
}

/** Parts the compliance commands work with, over the data dir (as the server has them). */
interface ComplianceParts {
  db: Db;
  audit: AuditLog;
  crm: CrmConnector;
  config: Config;
}

async function withCompliance<T>(
  options: CommonOptions,
  work: (parts: ComplianceParts) => Promise<T>,
): Promise<T> {
  return withCatalog(options, async (session) =>
    work({
      db: session.store.db,
      audit: session.audit,
      crm: await session.crm(),
      config: session.config,
    }),
  );
}

export function registerComplianceCommands(program: Command): void {
  const compliance = program
    .command('compliance')
    .description(
      'privacy and compliance: retention purge with proof, the reports an auditor verifies offline, runbooks per app',
    );
  registerRunbookCommand(compliance);

  withCommonOptions(
    compliance
      .command('purge')
      .description('delete app store documents and prune audit event bodies past their retention, now')
      .option('--now', 'run the purge now (the server also runs it every retention.purgeIntervalMs)'),
  ).action(async (options: PurgeOptions) => {
    if (!options.now) throw new InputError('say --now to purge now (the server purges on its own schedule)');
    const { loadComplianceWiring } = await import('../../server/index.js');
    const { purgeNow } = await loadComplianceWiring();
    const run = await withCompliance(options, (parts) => purgeNow(parts));
    const m = run.manifest;
    report(
      options,
      [
        `purge ${m.run}: deleted ${m.documents.length} documents, pruned ${m.events.length} audit event bodies (leaf hashes kept)`,
        ...Object.entries(m.counts).map(([c, n]) => `  ${c}: ${n.documents} documents, ${n.events} events`),
        `left past retention: ${m.left.documents} documents, ${m.left.events} events`,
        `recorded as audit event ${run.eventIndex} (manifest sha256:${run.digest})`,
      ].join('\n'),
      {
        run: m.run,
        at: m.at,
        counts: m.counts,
        left: m.left,
        documents: m.documents.length,
        events: m.events.length,
        event_index: run.eventIndex,
        digest: run.digest,
      },
    );
  });

  withCommonOptions(
    compliance
      .command('purge-report')
      .description('write the purge runs since a time, with proofs an auditor verifies offline')
      .requiredOption('--since <when>', 'how far back: 30d, 12h, or an ISO 8601 time')
      .requiredOption('--out <file>', 'where to write the report (JSON)'),
  ).action(async (options: ReportOptions) => {
    const since = sinceOf(options.since);
    const { buildComplianceReport, purgeRunsSince } = await import('../../compliance/index.js');
    const built = await withCompliance(options, async (parts) => {
      const runs = await purgeRunsSince(parts.db, since);
      return buildComplianceReport(parts.audit, {
        kind: 'purge',
        subject: `purge runs since ${since}`,
        runs,
      });
    });
    await writeFile(options.out, `${JSON.stringify(built, null, 2)}\n`, { mode: 0o600 });
    const { summary } = built;
    report(
      options,
      [
        `wrote ${options.out}: ${summary.runs} purge runs since ${since}, ${built.leaves.length} pruned events proven by leaf hash`,
        ...Object.entries(summary.counts).map(
          ([c, n]) => `  ${c}: ${n.documents} documents, ${n.events} events`,
        ),
        `verify it offline: gatehouse compliance verify-report ${options.out} --public-key "$(gatehouse audit public-key)"`,
      ].join('\n'),
      { out: options.out, since, summary },
    );
  });

  withCommonOptions(
    compliance
      .command('verify-report')
      .description(
        'check a purge or DSR report offline with the audit verifier key; exit 1 when it does not verify',
      )
      .argument('<file>', 'the report (JSON)')
      .option('--public-key <key>', "verifier key (or a file holding it); the data dir's when omitted"),
  ).action(async (file: string, options: VerifyOptions) => {
    const { verifyComplianceReport } = await import('../../compliance/index.js');
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      throw new InputError('the report cannot be read as JSON');
    }
    const verdict = verifyComplianceReport(parsed, await verifierKey(options));
    if (!verdict.ok) {
      report(options, `report does NOT verify: ${verdict.problem}`, verdict);
      process.exitCode = 1;
      return;
    }
    const counts = Object.entries(verdict.summary.counts)
      .map(([c, n]) => `${c} ${n.documents} documents/${n.events} events`)
      .join(', ');
    const left = verdict.summary.left;
    report(
      options,
      [
        `report verifies: ${verdict.runs} ${verdict.kind} run(s) proven in the signed tree of ${verdict.checkpoint_size} events; ${verdict.leaves} rewritten events proven by leaf hash`,
        `counts per class: ${counts || 'none'}`,
        ...(left
          ? [`left past retention after the newest run: ${left.documents} documents, ${left.events} events`]
          : []),
      ].join('\n'),
      verdict,
    );
  });
}

/** `30d`, `12h`, `45m` before now, or an ISO 8601 time; as ISO 8601. */
export function sinceOf(value: string, now = new Date()): string {
  const relative = /^(\d{1,5})([dhm])$/.exec(value);
  if (relative) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[relative[2] as 'd' | 'h' | 'm'];
    return new Date(now.getTime() - Number(relative[1]) * unit).toISOString();
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new InputError('--since takes 30d, 12h, 45m or an ISO 8601 time');
  return new Date(time).toISOString();
}

async function verifierKey(options: VerifyOptions): Promise<string> {
  if (options.publicKey) {
    const value = options.publicKey.trim();
    if (/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(value)) return value;
    try {
      return (await readFile(value, 'utf8')).trim();
    } catch {
      throw new InputError('--public-key is neither a verifier key nor a readable file holding one');
    }
  }
  const { auditOrigin, auditVerifierKey } = await import('../../audit/index.js');
  return withSecrets(commandConfig(options), (secrets) => auditVerifierKey(secrets, auditOrigin));
}
