import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { FieldClassification } from '../../classify/index.js';
import type { CrmObject } from '../../crm/index.js';
import { InputError } from '../../errors/index.js';
import type { Store } from '../../store/index.js';
import { commandConfig, progressBar, report, withCommonOptions, type CommonOptions } from '../context.js';

interface TableOptions extends CommonOptions {
  object?: string;
  sample: boolean;
  sampleSize: string;
}

interface OverrideOptions extends CommonOptions {
  reason: string;
  as?: string;
}

/** Sampling more records than this in all shows progress. */
const progressFrom = 2000;

export function registerClassifyCommands(program: Command): void {
  const classify = withCommonOptions(
    program
      .command('classify')
      .description(
        'the data class of every CRM field: metadata, refined by DLP sampling of real values, and admin overrides',
      )
      .option('--object <name>', 'only this object (account, contact, opportunity, note)')
      .option('--no-sample', 'show the stored sampling instead of sampling again')
      .option('--sample-size <n>', 'records sampled per object', '200'),
  ).action(async (options: TableOptions) => {
    const size = Number(options.sampleSize);
    if (!Number.isSafeInteger(size) || size < 1 || size > 100_000) {
      throw new InputError('--sample-size must be a whole number from 1 to 100000');
    }
    await withStore(options, async (store, config) => {
      const { classificationTable, sampleFields } = await import('../../classify/index.js');
      const { createEmbeddedCrm, crmObjects } = await import('../../crm/index.js');
      const connector = createEmbeddedCrm(store.db);
      const objects = selectObjects(options.object, crmObjects);
      let records: number | undefined;
      if (options.sample) {
        const bar = size * objects.length >= progressFrom ? progressBar('sampling') : undefined;
        try {
          ({ records } = await sampleFields(store.db, connector, {
            objects,
            size,
            onProgress: (done, total) => bar?.update(done, total),
          }));
        } finally {
          bar?.stop();
        }
        // Reading real CRM values is an access like any other: counts only, never a value.
        await withAudit(store, config.dataDir, (audit) =>
          audit.append({
            timestamp: new Date().toISOString(),
            actor_id: `os:${userInfo().username}`,
            actor_role: 'cli',
            app_id: 'gatehouse-cli',
            action: 'classify.sample',
            resource_type: 'field_classes',
            resource_id: objects.join(','),
            scope: '',
            request_id: `classify-${randomUUID()}`,
            trace_id: '',
            outcome: 'allow',
            reason: `DLP sampling of up to ${size} records per object for field classification`,
            record_count: records as number,
          }),
        );
      }
      const rows = await classificationTable(store.db, connector, objects);
      report(options, formatTable(rows, records), { records: rows, sampled_records: records ?? null });
    });
  });

  // --data-dir, --config and --json are the table's options, which commander parses wherever they
  // stand: the subcommands read them from there (optsWithGlobals) and show them in their help.
  overrideOptions(
    classify
      .command('set')
      .description("override a field's class (admin action, recorded in the audit trail)")
      .argument('<field>', 'OBJECT.FIELD, e.g. note.body')
      .argument('<class>', 'public, internal, pii, financial, health or secret'),
  ).action((field: string, dataClass: string, _options: unknown, command: Command) =>
    override(field, dataClass, command.optsWithGlobals<OverrideOptions>()),
  );

  overrideOptions(
    classify
      .command('clear')
      .description("remove a field's override, back to metadata and sampling (recorded in the audit trail)")
      .argument('<field>', 'OBJECT.FIELD'),
  ).action((field: string, _options: unknown, command: Command) =>
    override(field, undefined, command.optsWithGlobals<OverrideOptions>()),
  );
}

function overrideOptions(command: Command): Command {
  return command
    .configureHelp({ showGlobalOptions: true })
    .requiredOption('--reason <text>', 'why; recorded in the audit trail')
    .option(
      '--as <email>',
      'who decides, as recorded in the audit trail (stated, not verified: the CLI holds no sign-in)',
    );
}

async function override(field: string, dataClass: string | undefined, options: OverrideOptions) {
  if (options.as !== undefined && !/^[^\s@]{1,64}@[^\s@]{1,190}$/.test(options.as)) {
    throw new InputError('--as must be an e-mail address');
  }
  await withStore(options, async (store, config) => {
    const { changeOverride, parseFieldRef } = await import('../../classify/index.js');
    const { createEmbeddedCrm } = await import('../../crm/index.js');
    const connector = createEmbeddedCrm(store.db);
    const ref = parseFieldRef(field, connector);
    const osUser = userInfo().username;
    const stated = options.as
      ? ` (actor stated with --as, not verified; os user ${osUser} on ${hostname()})`
      : '';
    const row = await withAudit(store, config.dataDir, (audit) =>
      changeOverride(store.db, connector, audit, {
        ref,
        dataClass,
        reason: `${options.reason}${stated}`,
        actor: options.as ?? `os:${osUser}`,
      }),
    );
    const human =
      dataClass === undefined
        ? `${field}: override removed; effective class ${row.effective}`
        : `${field}: overridden to ${row.effective} (metadata ${row.metadata}${row.sampled ? `, sampling ${row.sampled}` : ''}); recorded in the audit trail`;
    report(options, human, row);
  });
}

function selectObjects(name: string | undefined, all: readonly CrmObject[]): readonly CrmObject[] {
  if (name === undefined) return all;
  const object = all.find(
    (o) => o === name || `${o}s` === name || (o === 'opportunity' && name === 'opportunities'),
  );
  if (!object) throw new InputError(`--object must be one of ${all.join(', ')}`);
  return [object];
}

async function withStore<T>(
  options: CommonOptions,
  work: (store: Store, config: ReturnType<typeof commandConfig>) => Promise<T>,
): Promise<T> {
  const config = commandConfig(options);
  const { openStore } = await import('../../store/index.js');
  const store = await openStore(config);
  try {
    return await work(store, config);
  } finally {
    await store.close();
  }
}

async function withAudit<T>(
  store: Store,
  dataDir: string,
  work: (audit: import('../../audit/index.js').AuditLog) => Promise<T>,
): Promise<T> {
  const [{ auditOrigin, openAuditLog }, { openSecretStore }] = await Promise.all([
    import('../../audit/index.js'),
    import('../../secrets/index.js'),
  ]);
  const audit = await openAuditLog({
    db: store.db,
    secrets: await openSecretStore(store.db, dataDir),
    origin: auditOrigin,
  });
  try {
    return await work(audit);
  } finally {
    await audit.close();
  }
}

/** object, field, metadata class, sampled evidence, override, effective class. */
function formatTable(rows: readonly FieldClassification[], sampledRecords?: number): string {
  const header = ['OBJECT', 'FIELD', 'METADATA', 'SAMPLED EVIDENCE', 'OVERRIDE', 'EFFECTIVE'];
  const cells = rows.map((r) => [
    r.object,
    r.field,
    r.metadata,
    evidenceText(r),
    r.override ? `${r.override.dataClass} (${r.override.actor})` : '-',
    r.effective === r.metadata ? r.effective : `${r.effective} *`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const changed = rows.filter((r) => r.effective !== r.metadata).length;
  const footer =
    `${rows.length} fields, ${changed} with a class other than their metadata's (*)` +
    (sampledRecords === undefined ? '; stored sampling shown' : `; sampled ${sampledRecords} records`);
  return [line(header), ...cells.map(line), footer].join('\n');
}

function evidenceText(row: FieldClassification): string {
  if (!row.sample) return row.type === 'string' ? 'not sampled' : '-';
  if (row.sample.sampled === 0) return 'no values sampled';
  const kinds = Object.entries(row.sample.evidence)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([kind, n]) => `${kind} ${n}/${row.sample!.sampled}`);
  const text = kinds.length > 0 ? kinds.join(', ') : `none in ${row.sample.sampled}`;
  return row.sampled ? `${text} -> ${row.sampled}` : text;
}
