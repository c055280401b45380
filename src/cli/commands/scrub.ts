import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import type { ScrubReport, ScrubRow, ScrubTable } from '../../compliance/index.js';
import type { CrmObject } from '../../crm/index.js';
import { GatehouseError, InputError } from '../../errors/index.js';
import { commandConfig, progressBar, report, type CommonOptions } from '../context.js';

interface ScrubOptions extends Pick<CommonOptions, 'config' | 'json'> {
  from: string;
  to: string;
}

/** The key of the pseudonyms, kept in the source's key service: staging never holds it. */
const scrubKeyName = 'compliance/scrub-key';
const batch = 500;

/**
 * `gatehouse scrub --from <data dir> --to <data dir>`: the source's CRM, scrubbed (src/compliance/
 * scrub.ts), written into the target's store — a fresh data dir, migrated here, or its database when
 * configured — then checked: every original value that identifies someone on its own is searched for in
 * what was written (the rows as stored, and the SQLite file's bytes), and any survivor fails the run.
 */
export function registerScrubCommand(program: Command): void {
  program
    .command('scrub')
    .description(
      'copy the CRM into a staging data dir with identifiers pseudonymised, personal values faked and free text redacted',
    )
    .requiredOption('--from <dir>', 'the source data dir (its gatehouse.db is read, never changed)')
    .requiredOption('--to <dir>', 'the staging data dir to fill (its CRM must be empty)')
    .option('--config <file>', 'configuration file for the staging data dir (YAML or JSON)')
    .option('--json', 'machine-readable output')
    .action(async (options: ScrubOptions) => {
      const result = await scrub(options);
      const lines = [
        `scrubbed ${options.from} into ${options.to}`,
        ...Object.entries(result.tables).map(
          ([table, t]) =>
            `  ${table}: ${t.rows} rows; ${
              Object.entries(t.columns)
                .map(([column, c]) => `${column} ${c.treatment} (${c.replaced})`)
                .join(', ') || 'nothing replaced'
            }`,
        ),
        `  free text: DLP redacted ${
          Object.entries(result.dlp)
            .map(([kind, n]) => `${n} ${kind}`)
            .join(', ') || 'nothing'
        }`,
        `  check: ${result.check.searched} original values searched for in the output, ${result.check.survivors} found`,
      ];
      report(options, lines.join('\n'), result);
    });
}

interface ScrubResult extends ScrubReport {
  from: string;
  to: string;
  check: { searched: number; survivors: number; searched_in: string[] };
}

async function scrub(options: ScrubOptions): Promise<ScrubResult> {
  const from = resolve(options.from);
  const to = resolve(options.to);
  const sourceFile = join(from, 'gatehouse.db');
  if (!existsSync(sourceFile))
    throw new InputError(`--from ${options.from} holds no gatehouse.db: name a data dir`);
  if (from === to) throw new InputError('--to must be another data dir than --from');
  const [
    { Scrubber, scrubTables, survivors },
    { openLocalSecretStore },
    { openGatehouseStore },
    { isCrmEmpty, createFieldKeys, openStoredRecords },
    sqlite,
  ] = await Promise.all([
    import('../../compliance/index.js'),
    import('../../secrets/index.js'),
    import('../../database/index.js'),
    import('../../crm/index.js'),
    import('better-sqlite3'),
  ]);
  const secrets = openLocalSecretStore(from);
  const key = (await secrets.get(scrubKeyName)) ?? (await secrets.putIfAbsent(scrubKeyName, randomBytes(32)));
  const source = new sqlite.default(sourceFile, { readonly: true, fileMustExist: true });
  const config = commandConfig({ dataDir: to, config: options.config });
  const store = await openGatehouseStore(config);
  const bar = progressBar('scrubbing');
  let open = true;
  const closeStore = async () => {
    if (open) await store.close();
    open = false;
  };
  try {
    if (!(await isCrmEmpty(store.db))) {
      throw new InputError(`the CRM of ${options.to} is not empty: scrub into a fresh data dir`);
    }
    // Reading a key consults only the key service (the source's), never the store it is given.
    const sourceKeys = createFieldKeys(store.db, secrets);
    const objects: Record<ScrubTable, CrmObject> = {
      crm_accounts: 'account',
      crm_contacts: 'contact',
      crm_opportunities: 'opportunity',
      crm_notes: 'note',
    };
    // The scrubber sees what the CRM holds: encrypted fields opened, blind indexes left out.
    const rows = async function* (table: ScrubTable): AsyncGenerator<ScrubRow> {
      for (const row of source
        .prepare(`select * from ${table} order by id`)
        .iterate() as IterableIterator<ScrubRow>) {
        const [plain] = await openStoredRecords(sourceKeys, objects[table], [
          row as Record<string, string | number | null>,
        ]);
        yield plain as ScrubRow;
      }
    };
    const count = (table: ScrubTable) =>
      (source.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    const total = scrubTables.reduce((sum, table) => sum + count(table), 0);
    const scrubber = new Scrubber(key);
    for (const table of scrubTables) for await (const row of rows(table)) scrubber.learn(table, row);
    const target = store.db as unknown as Kysely<Record<ScrubTable, ScrubRow>>;
    let done = 0;
    for (const table of scrubTables) {
      let pending: ScrubRow[] = [];
      const flush = async () => {
        if (pending.length > 0) await target.insertInto(table).values(pending).execute();
        done += pending.length;
        pending = [];
        bar.update(done, total);
      };
      for await (const row of rows(table)) {
        pending.push(scrubber.scrub(table, row));
        if (pending.length >= batch) await flush();
      }
      await flush();
    }
    bar.stop();
    const summary = scrubber.summary();
    const sensitive = [...scrubber.sensitive];
    const inRows = survivors(await storedText(target, scrubTables), sensitive);
    await closeStore();
    const files = [join(to, 'gatehouse.db'), join(to, 'gatehouse.db-wal')].filter((f) => existsSync(f));
    const inFiles = config.database.url
      ? []
      : survivors(
          (await Promise.all(files.map((f) => readFile(f)))).map((b) => b.toString('latin1')).join('\n'),
          sensitive,
        );
    const found = new Set([...inRows, ...inFiles]).size;
    // Never the values themselves: they are what must not leak.
    if (found > 0) {
      throw new GatehouseError(
        'SCRUB_LEAK',
        `${found} original values survived the scrub in ${options.to}; do not use it`,
      );
    }
    return {
      from: options.from,
      to: options.to,
      ...summary,
      check: {
        searched: sensitive.length,
        survivors: 0,
        searched_in: config.database.url ? ['stored rows'] : ['stored rows', 'gatehouse.db bytes'],
      },
    };
  } finally {
    bar.stop();
    source.close();
    await closeStore();
  }
}

/** Every stored CRM row as JSON text, one per line: what the check searches besides the file bytes. */
async function storedText(
  db: Kysely<Record<ScrubTable, ScrubRow>>,
  tables: readonly ScrubTable[],
): Promise<string> {
  const lines: string[] = [];
  for (const table of tables) {
    for (const row of await db.selectFrom(table).selectAll().execute()) lines.push(JSON.stringify(row));
  }
  return Buffer.from(lines.join('\n'), 'utf8').toString('latin1');
}
