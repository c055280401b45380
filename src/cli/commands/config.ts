import type { Command } from 'commander';
import { configEntries, demoProfile, explainConfig } from '../../config/index.js';
import { report, withCommonOptions, type CommonOptions } from '../context.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('the effective configuration');
  withCommonOptions(
    config
      .command('show')
      .description('print every setting with where it came from (default, file, env, flag); secrets hidden')
      .option('--demo', 'as `serve --demo` runs: with the demo profile under the file'),
  ).action((options: CommonOptions & { demo?: boolean }) => {
    const { config: effective, originOf } = explainConfig({
      file: options.config,
      overrides: { dataDir: options.dataDir, demo: options.demo || undefined },
      profile: options.demo ? demoProfile : undefined,
    });
    const entries = configEntries(effective, originOf);
    const width = Math.max(...entries.map(({ key }) => key.length));
    const human = entries
      .map(({ key, value, source }) => `${key.padEnd(width)}  ${JSON.stringify(value)}  (${source})`)
      .join('\n');
    report(options, human, entries);
  });
}
