import type { Command } from 'commander';
import { mintDevIdToken } from '../../devidp/index.js';
import { GatehouseError } from '../../errors/index.js';
import { openLocalSecretStore } from '../../secrets/index.js';
import { openStore, readMeta } from '../../store/index.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('development helpers (demo mode only)');
  withCommonOptions(
    dev
      .command('id-token')
      .description('print an ID token for a demo user, signed by the development IdP')
      .requiredOption('--user <name>', 'demo user: alice, bob, erin, carol, dave or rita'),
  ).action(async (options: CommonOptions & { user: string }) => {
    const config = commandConfig(options);
    const store = await openStore(config);
    try {
      const [mode, issuer] = [await readMeta(store.db, 'mode'), await readMeta(store.db, 'idp_issuer')];
      if (mode !== 'demo' || !issuer) {
        throw new GatehouseError(
          'DEMO_ONLY',
          `dev id-token works only on a demo data dir; start the demo first (npm start) or pass --data-dir`,
        );
      }
      const secrets = openLocalSecretStore(config.dataDir);
      const token = await mintDevIdToken({ config, secrets, user: options.user, issuer });
      report(options, token, { id_token: token, issuer, user: options.user });
    } finally {
      await store.close();
    }
  });
}
