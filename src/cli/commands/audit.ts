import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import {
  auditOrigin,
  auditVerifierKey,
  exportLog,
  verifyExportFile,
  verifyStoredLog,
  type StoredLogReport,
} from '../../audit/index.js';
import { InputError } from '../../errors/index.js';
import { openLocalSecretStore } from '../../secrets/index.js';
import { openStore } from '../../store/index.js';
import { commandConfig, progressBar, report, withCommonOptions, type CommonOptions } from '../context.js';

interface VerifyOptions extends CommonOptions {
  file?: string;
  publicKey?: string;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  withCommonOptions(
    audit.command('public-key').description("print the checkpoint signers' verifier key"),
  ).action(async (options: CommonOptions) => {
    const config = commandConfig(options);
    const key = await auditVerifierKey(openLocalSecretStore(config.dataDir), auditOrigin);
    report(options, key, { verifier_key: key });
  });

  withCommonOptions(
    audit
      .command('verify')
      .description(
        'recompute the Merkle log and check every signed checkpoint; exit 3 when intact but a write has no recorded outcome',
      )
      .option('--file <export>', 'verify an export file offline instead of the data dir')
      .option('--public-key <key>', 'verifier key (or a file holding it); required with --file'),
  ).action(async (options: VerifyOptions) => {
    const bar = progressBar('verifying');
    let result: StoredLogReport;
    if (options.file) {
      if (!options.publicKey)
        throw new InputError('--file needs --public-key (see gatehouse audit public-key)');
      result = await verifyExportFile(options.file, readKey(options.publicKey), (d, t) => bar.update(d, t));
    } else {
      const config = commandConfig(options);
      const key = await auditVerifierKey(openLocalSecretStore(config.dataDir), auditOrigin);
      const store = await openStore(config);
      try {
        result = await verifyStoredLog(store.db, key, (d, t) => bar.update(d, t));
      } finally {
        await store.close();
      }
    }
    bar.stop();
    const unfinished = result.unfinishedWrites ?? [];
    if (result.ok && unfinished.length > 0) {
      // Intact, but a write may have changed the CRM without its outcome recorded: exit 3, look at each.
      report(
        options,
        [
          `audit log intact: ${result.size} events, ${result.checkpoints} signed checkpoints verified`,
          `${unfinished.length} write${unfinished.length === 1 ? '' : 's'} recorded as intended without an outcome; check these records:`,
          ...unfinished.map(
            (w) =>
              `  index ${w.index}: ${w.action} ${w.resource_type} ${w.resource_id || '(new)'} by ${w.actor_id} via ${w.app_id}, request ${w.request_id}`,
          ),
        ].join('\n'),
        result,
      );
      process.exitCode = 3;
    } else if (result.ok) {
      report(
        options,
        `audit log intact: ${result.size} events, ${result.checkpoints} signed checkpoints verified`,
        result,
      );
    } else {
      report(options, `audit log TAMPERED at index ${result.firstBadIndex}: ${result.problem}`, result);
      process.exitCode = 1;
    }
  });

  withCommonOptions(
    audit
      .command('export')
      .description('write events, leaf hashes and checkpoints as JSON lines')
      .requiredOption('--out <file>', 'output file'),
  ).action(async (options: CommonOptions & { out: string }) => {
    const store = await openStore(commandConfig(options));
    const bar = progressBar('exporting');
    try {
      const result = await exportLog(store.db, options.out, (d, t) => bar.update(d, t));
      bar.stop();
      report(
        options,
        `exported ${result.events} events and ${result.checkpoints} checkpoints to ${options.out}`,
        result,
      );
    } finally {
      bar.stop();
      await store.close();
    }
  });
}

/** A verifier key given inline (`name+id+key`) or as a file that holds one. */
function readKey(value: string): string {
  if (/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(value.trim())) return value.trim();
  try {
    return readFileSync(value, 'utf8').trim();
  } catch {
    throw new InputError('--public-key is neither a verifier key nor a readable file holding one');
  }
}
