import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Runbook } from '../../compliance/index.js';
import { InputError, NotFound } from '../../errors/index.js';
import { report, withCommonOptions, type CommonOptions } from '../context.js';
import { callAdmin, currentLogin } from '../login.js';
import { withCatalog } from './app.js';

interface RunbookOptions extends CommonOptions {
  format?: string;
  out?: string;
}

/**
 * `gatehouse compliance runbook APP`: the app's record of processing from live state — through the
 * admin API as the logged-in user when `gatehouse login` holds, else read from the data dir — as
 * Markdown (default) or print-ready HTML, to stdout or --out; --json gives the structured record.
 */
export function registerRunbookCommand(compliance: Command): void {
  withCommonOptions(
    compliance
      .command('runbook')
      .description(
        "an app's record of processing (GDPR Art. 30): reads, purposes, retention, residency, DSRs, approvals, incidents",
      )
      .argument('<app>', 'app id')
      .option('--format <format>', 'md or html', 'md')
      .option('--out <file>', 'write it to this file instead of stdout'),
  ).action(async (id: string, options: RunbookOptions) => {
    const { runbookHtml, runbookMarkdown } = await import('../../compliance/index.js');
    const format = options.format ?? 'md';
    if (format !== 'md' && format !== 'html') throw new InputError('--format must be md or html');
    const runbook = await liveRunbook(id, options);
    if (options.json && options.out === undefined) {
      report(options, '', runbook);
      return;
    }
    const text = format === 'html' ? runbookHtml(runbook) : runbookMarkdown(runbook);
    if (options.out === undefined) {
      process.stdout.write(text);
      return;
    }
    await writeFile(options.out, text);
    report(options, `${options.out}: runbook of ${runbook.app.id} (${format})`, {
      app: runbook.app.id,
      format,
      out: options.out,
    });
  });
}

async function liveRunbook(id: string, options: RunbookOptions): Promise<Runbook> {
  const login = await currentLogin(options);
  if (login !== undefined) {
    return (await callAdmin(
      login,
      'GET',
      `/admin/v1/apps/${encodeURIComponent(id)}/runbook`,
    )) as unknown as Runbook;
  }
  const [{ buildRunbook }, { listIncidents }, { createEmbeddedCrm, createFieldKeys }] = await Promise.all([
    import('../../compliance/index.js'),
    import('../../detect/index.js'),
    import('../../crm/index.js'),
  ]);
  return withCatalog(options, async ({ config, lifecycle, store, secrets }) => {
    const found = await lifecycle.catalog.findApp(id);
    if (!found) throw new NotFound(`no app ${id}`);
    const crm = createEmbeddedCrm(store.db, createFieldKeys(store.db, secrets));
    return buildRunbook({
      app: found,
      history: await lifecycle.catalog.history(found.id),
      incidents: (await listIncidents(store.db, { app_id: found.id, limit: 100 })).records,
      fieldsets: config.scopes,
      fieldMeta: (object) =>
        new Map(
          crm.describe(object as Parameters<typeof crm.describe>[0]).fields.map((f) => [f.name, f] as const),
        ),
      residency: config.compliance.residency,
      now: new Date(),
    });
  });
}
