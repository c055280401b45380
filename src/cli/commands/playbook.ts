import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { InputError } from '../../errors/index.js';
import { report, withCommonOptions, withModules, type CommonOptions } from '../context.js';
import { localOperator } from '../login.js';

/**
 * `gatehouse playbook show|publish`: the detection playbook every node serves from, kept in the store
 * (src/control). A publish is validated first, audited before it takes effect, and in force on every
 * node within `control.pollMs` (at once on PostgreSQL).
 */
export function registerPlaybookCommands(program: Command): void {
  const playbook = program
    .command('playbook')
    .description('the detection playbook in force on every node (rules to actions), kept in the store');

  withCommonOptions(playbook.command('show').description('the version of the playbook in force')).action(
    async (options: CommonOptions) => {
      const { activePlaybook } = await import('../../control/index.js');
      await withModules(options, async ({ store }) => {
        const active = await activePlaybook(store.db);
        report(
          options,
          active
            ? `playbook version ${active.version} is in force`
            : 'no playbook published: nodes use the built-in one',
          { version: active?.version ?? null },
        );
      });
    },
  );

  withCommonOptions(
    playbook
      .command('publish')
      .description('validate a playbook file and put it in force on every node (audited)')
      .argument('<file>', 'the playbook (YAML, as policies/playbooks.yaml)')
      .requiredOption('--reason <text>', 'why it changes (kept in the audit trail)'),
  ).action(async (file: string, options: CommonOptions & { reason: string }) => {
    const [{ activePlaybook, publishPlaybook }, { parsePlaybook }, { publishReason }] = await Promise.all([
      import('../../control/index.js'),
      import('../../detect/index.js'),
      import('../../policy-library/index.js'),
    ]);
    const reason = publishReason(options.reason);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new InputError(`${file} cannot be read`);
    }
    // A playbook that does not parse never reaches a node (ConfigError naming the file and the problem).
    parsePlaybook(text, file);
    await withModules(options, async ({ store, audit }) => {
      const previous = (await activePlaybook(store.db))?.version ?? 'built-in';
      const log = await audit();
      const version = await publishPlaybook(store.db, text, async (next) => {
        await log.append({
          timestamp: new Date().toISOString(),
          actor_id: localOperator.id,
          actor_role: localOperator.role,
          app_id: 'gatehouse-cli',
          action: 'playbook.publish',
          resource_type: 'playbook',
          resource_id: next,
          scope: '',
          request_id: `playbook-publish-${randomUUID()}`,
          trace_id: '',
          outcome: 'allow',
          reason: `version ${previous} -> ${next}; local operator, not verified: os user ${userInfo().username} on ${hostname()}; ${reason}`,
        });
      });
      report(
        options,
        version === previous
          ? `playbook version ${version} is in force already`
          : `published playbook version ${version} (was ${previous}); nodes switch within a second`,
        { version, previous },
      );
    });
  });
}
