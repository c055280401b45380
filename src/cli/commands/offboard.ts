import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AuditIntegrityError } from '../../errors/index.js';
import {
  commandConfig,
  progressBar,
  report,
  withCommonOptions,
  withSecrets,
  type CommonOptions,
} from '../context.js';
import { callAdmin, currentLogin, localOperator } from '../login.js';
import { withCatalog } from './app.js';

interface OffboardOptions extends CommonOptions {
  transferTo?: string;
  reason: string;
}

export function registerOffboardCommands(program: Command): void {
  const offboard = program
    .command('offboard')
    .description('offboarding: switch off what a leaver owns and keep a verifiable record of it');

  withCommonOptions(
    offboard
      .command('user')
      .description(
        'an owner leaves: suspend (or transfer) their apps, revoke every token of those apps and of the user, remove their secrets, archive their audit events as a verifiable bundle',
      )
      .argument('<email>', "the leaver's email")
      .option('--transfer-to <email>', 'hand their apps to this owner instead of suspending them')
      .option('--reason <text>', 'why; recorded in the audit trail', 'the owner left'),
  ).action(async (email: string, options: OffboardOptions) => {
    const login = await currentLogin(options);
    if (login !== undefined) {
      const result = await callAdmin(login, 'POST', '/admin/v1/offboard', {
        user: email,
        ...(options.transferTo === undefined ? {} : { transfer_to: options.transferTo }),
        reason: options.reason,
      });
      // The server names the archive within its data dir.
      const archive = result.archive as OffboardReport['archive'];
      const located = {
        ...result,
        archive: { ...archive, file: resolve(commandConfig(options).dataDir, archive.file) },
      };
      report(options, describeOffboard(located as OffboardReport), located);
      return;
    }
    const { offboardUser } = await import('../../catalog/index.js');
    await withCatalog(options, async ({ config, audit, secrets, lifecycle, revokeTokens }) => {
      const bar = progressBar('archiving the audit trail');
      const result = await offboardUser(
        {
          lifecycle,
          log: audit,
          secrets,
          dataDir: config.dataDir,
          revokeTokens,
          onProgress: (scanned) => bar.update(scanned, scanned),
        },
        email,
        { transferTo: options.transferTo, by: localOperator, reason: options.reason },
      );
      bar.stop();
      report(options, describeOffboard(result), result);
    });
  });

  withCommonOptions(
    offboard
      .command('verify')
      .description(
        "check an offboarding or retirement archive offline: every event's inclusion proof against the signed checkpoint",
      )
      .argument('<file>', 'the archive')
      .option(
        '--public-key <key>',
        "the audit verifier key (gatehouse audit public-key); the data dir's when absent",
      ),
  ).action(async (file: string, options: CommonOptions & { publicKey?: string }) => {
    const { readArchive, verifyArchive } = await import('../../catalog/index.js');
    let key = options.publicKey;
    if (key === undefined) {
      const { auditOrigin, auditVerifierKey } = await import('../../audit/index.js');
      key = await withSecrets(commandConfig(options), (secrets) => auditVerifierKey(secrets, auditOrigin));
    }
    const result = verifyArchive(readArchive(file), key);
    if (!result.ok) {
      throw new AuditIntegrityError(`the archive does not verify: ${result.problem}`, { code: result.code });
    }
    const bundles = result.bundles ?? 1;
    report(
      options,
      `archive intact: ${result.events} events in ${bundles} evidence bundle${bundles === 1 ? '' : 's'}, proven against a signed checkpoint of ${result.size} events`,
      result,
    );
  });
}

type OffboardReport = Awaited<ReturnType<CatalogModule['offboardUser']>>;
type CatalogModule = typeof import('../../catalog/index.js');

function describeOffboard(result: OffboardReport): string {
  const lines = [
    `offboarded ${result.user}`,
    ...result.apps.map((a) => `  ${a.app_id}: ${a.action}${a.to ? ` to ${a.to}` : ''}`),
    `  tokens revoked: every token of ${[...result.tokens_revoked.apps.map((a) => `app ${a}`), `user ${result.user}`].join(', ')}`,
    `  secrets removed: ${result.secrets_removed.length}`,
    `  archive: ${result.archive.file} (${result.archive.events} events, checkpoint of ${result.archive.checkpoint_size})`,
    `  verify it: gatehouse offboard verify ${result.archive.file}`,
  ];
  if (result.apps.length === 0) lines.splice(1, 0, '  no apps owned');
  return lines.join('\n');
}
