import type { Command } from 'commander';
import { GatehouseError, toCliLine } from '../../errors/index.js';
import { progressBar, report, withCommonOptions, type CommonOptions } from '../context.js';

/** Bundles smaller than this scan in well under a second: no progress bar. */
const progressFrom = 8 * 1024 * 1024;

export function registerScanCommand(program: Command): void {
  withCommonOptions(
    program
      .command('scan')
      .description(
        'scan a microapp bundle (folder, .zip or .tgz) for embedded secrets, direct CRM calls and unpinned dependencies: exit 1 on critical or high findings, 2 when the bundle cannot be read',
      )
      .argument('<path>', 'the bundle: a folder, a .zip or a .tgz/.tar.gz'),
  ).action(async (path: string, options: CommonOptions) => {
    const { formatReport, scanBundle, scanSummary } = await import('../../scan/index.js');
    let bar: ReturnType<typeof progressBar> | undefined;
    let result;
    try {
      result = await scanBundle(path, {
        onProgress: ({ done, total }) => {
          if (total < progressFrom) return;
          bar ??= progressBar(`scanning ${path}`);
          bar.update(done, total);
        },
      });
    } catch (error) {
      if (!(error instanceof GatehouseError && error.code === 'BUNDLE_INVALID')) throw error;
      if (options.json) report(options, '', { error: { code: error.code, message: error.message } });
      process.stderr.write(`${toCliLine(error)}\n`);
      process.exitCode = 2;
      return;
    } finally {
      bar?.stop();
    }
    report(options, formatReport(result), { ...result, summary: scanSummary(result) });
    process.exitCode = result.counts.critical + result.counts.high > 0 ? 1 : 0;
  });
}
