import type { Command } from 'commander';
import { createCatalog } from '../../catalog/index.js';
import { GatehouseError } from '../../errors/index.js';
import { openStore } from '../../store/index.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

export function registerAppCommands(program: Command): void {
  const app = program.command('app').description('the app catalog');
  withCommonOptions(app.command('list').description('list registered apps')).action(
    async (options: CommonOptions) => {
      const store = await openStore(commandConfig(options));
      try {
        const apps = await createCatalog(store.db).listApps();
        const lines = apps.map(
          (a) => `${a.id.padEnd(22)} ${a.status.padEnd(10)} ${a.owner.padEnd(22)} ${a.scopes.join(' ')}`,
        );
        report(options, lines.join('\n') || 'no apps registered', { records: apps });
      } finally {
        await store.close();
      }
    },
  );
  withCommonOptions(app.command('show').description('show one app').argument('<id>', 'app id')).action(
    async (id: string, options: CommonOptions) => {
      const store = await openStore(commandConfig(options));
      try {
        const found = await createCatalog(store.db).findApp(id);
        if (!found) throw new GatehouseError('NOT_FOUND', `no app ${id}; see gatehouse app list`);
        report(options, JSON.stringify(found, null, 2), found);
      } finally {
        await store.close();
      }
    },
  );
}
