import type { Command } from 'commander';
import { createFieldKeys, seedCrm } from '../../crm/index.js';
import { openLocalSecretStore } from '../../secrets/index.js';
import { InputError } from '../../errors/index.js';
import { demoSeedOwners } from '../../config/index.js';
import { commandConfig, progressBar, report, withCommonOptions, type CommonOptions } from '../context.js';

interface SeedOptions extends CommonOptions {
  contacts?: string;
  seed?: string;
}

export function registerSeedCommand(program: Command): void {
  withCommonOptions(
    program
      .command('seed')
      .description('replace the embedded CRM data with a deterministic synthetic data set')
      .option(
        '--contacts <n>',
        'number of contacts (accounts, opportunities and notes scale with it)',
        '2000',
      )
      .option('--seed <n>', 'random seed; the same seed gives the same data', '42'),
  ).action(async (options: SeedOptions) => {
    const contacts = positiveInteger(options.contacts, '--contacts');
    const seed = positiveInteger(options.seed, '--seed');
    const config = commandConfig(options);
    const { openGatehouseStore } = await import('../../database/index.js');
    const store = await openGatehouseStore(config);
    const bar = progressBar('seeding');
    try {
      const result = await seedCrm(store.db, {
        contacts,
        seed,
        owners: demoSeedOwners(config),
        onProgress: (done, total) => bar.update(done, total),
        ...(config.crm.kind === 'embedded' && {
          fieldKeys: createFieldKeys(store.db, openLocalSecretStore(config.dataDir)),
        }),
      });
      bar.stop();
      const total = result.accounts + result.contacts + result.opportunities + result.notes;
      const rate = Math.round(total / Math.max(result.seconds, 0.001));
      report(
        options,
        `seeded ${result.accounts} accounts, ${result.contacts} contacts, ${result.opportunities} opportunities, ` +
          `${result.notes} notes in ${result.seconds.toFixed(1)}s (${rate} records/s)`,
        { ...result, records_per_second: rate },
      );
    } finally {
      bar.stop();
      await store.close();
    }
  });
}

function positiveInteger(value: string | undefined, flag: string): number {
  if (!value || !/^[1-9][0-9]{0,8}$/.test(value)) throw new InputError(`${flag} must be a positive integer`);
  return Number(value);
}
