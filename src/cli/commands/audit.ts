import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { StoredLogReport, WitnessPolicy } from '../../audit/index.js';
import type { Config } from '../../config/index.js';
import { InputError } from '../../errors/index.js';
import type { Db } from '../../store/index.js';
import {
  commandConfig,
  progressBar,
  report,
  withCommonOptions,
  withSecrets,
  type CommonOptions,
} from '../context.js';

interface VerifyOptions extends WitnessOptions {
  file?: string;
  publicKey?: string;
}

export interface WitnessOptions extends CommonOptions {
  witness: string[];
  quorum?: string;
}

/** Adds --witness (repeatable) and --quorum: the witnesses whose cosignatures a checkpoint needs. */
export function withWitnessOptions(command: Command): Command {
  return command
    .option(
      '--witness <vkey>',
      "a witness's verifier key; repeat for each (default: the configured audit.witnesses)",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option('--quorum <n>', 'cosignatures required (default: audit.witnessQuorum, else every witness)');
}

/** The witness policy from the options, else from the configuration; undefined when there is none. */
export function witnessPolicy(options: WitnessOptions, config: Config): WitnessPolicy | undefined {
  const witnesses = options.witness.length > 0 ? options.witness : config.audit.witnesses.map((w) => w.vkey);
  if (witnesses.length === 0) {
    if (options.quorum !== undefined)
      throw new InputError('--quorum needs witnesses (--witness or audit.witnesses)');
    return undefined;
  }
  const configured = options.witness.length > 0 ? undefined : config.audit.witnessQuorum;
  const quorum = options.quorum === undefined ? (configured ?? witnesses.length) : Number(options.quorum);
  if (!Number.isSafeInteger(quorum) || quorum < 1 || quorum > witnesses.length) {
    throw new InputError(
      `--quorum must be a whole number from 1 to ${witnesses.length} (the witnesses given)`,
    );
  }
  return { witnesses, quorum };
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  withCommonOptions(
    audit.command('public-key').description("print the checkpoint signers' verifier key"),
  ).action(async (options: CommonOptions) => {
    const { auditOrigin, auditVerifierKey } = await import('../../audit/index.js');
    const config = commandConfig(options);
    const key = await withSecrets(config, (secrets) => auditVerifierKey(secrets, auditOrigin));
    report(options, key, { verifier_key: key });
  });

  withWitnessOptions(
    withCommonOptions(
      audit
        .command('verify')
        .description(
          'recompute the Merkle log and check every signed checkpoint; exit 3 when intact but a write has no recorded outcome',
        )
        .option('--file <export>', 'verify an export file offline instead of the data dir')
        .option('--public-key <key>', 'verifier key (or a file holding it); required with --file'),
    ),
  ).action(async (options: VerifyOptions) => {
    const { auditOrigin, auditVerifierKey, verifyExportFile, verifyStoredLog } =
      await import('../../audit/index.js');
    const bar = progressBar('verifying');
    let result: StoredLogReport;
    if (options.file) {
      if (!options.publicKey)
        throw new InputError('--file needs --public-key (see gatehouse audit public-key)');
      const witnesses = witnessPolicy(options, commandConfig(options));
      result = await verifyExportFile(
        options.file,
        readKey(options.publicKey),
        (d, t) => bar.update(d, t),
        witnesses,
      );
    } else {
      const config = commandConfig(options);
      const witnesses = witnessPolicy(options, config);
      const { openGatehouseStore } = await import('../../database/index.js');
      const store = await openGatehouseStore(config);
      try {
        const key = await withSecrets(config, (secrets) => auditVerifierKey(secrets, auditOrigin));
        result = await verifyStoredLog(store.db, key, (d, t) => bar.update(d, t), witnesses);
        if (result.ok && config.audit.witnesses.length > 0)
          result = await askWitnesses(store.db, config, result);
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
      const witnessed = result.witnessed
        ? `; checkpoint ${result.witnessed.size} cosigned by ${result.witnessed.witnesses.join(', ')} (quorum ${result.witnessed.quorum})`
        : '';
      report(
        options,
        `audit log intact: ${result.size} events, ${result.checkpoints} signed checkpoints verified${witnessed}`,
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
    const [{ exportLog }, { openGatehouseStore }] = await Promise.all([
      import('../../audit/index.js'),
      import('../../database/index.js'),
    ]);
    const store = await openGatehouseStore(commandConfig(options));
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

/**
 * A tail deleted without signing again leaves a witnessed checkpoint behind: only the witnesses know
 * they cosigned more. Asked online when the configuration names them; one that cannot answer is told.
 */
async function askWitnesses(db: Db, config: Config, result: StoredLogReport): Promise<StoredLogReport> {
  const newest = await db
    .selectFrom('audit_checkpoints')
    .select(['size', 'note'])
    .orderBy('size', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!newest) return result;
  const { askWitnessedSizes } = await import('../../audit/index.js');
  for (const answer of await askWitnessedSizes(config.audit.witnesses, newest.note)) {
    if (answer.problem !== undefined) {
      process.stderr.write(`gatehouse: witness ${answer.name} could not be asked: ${answer.problem}\n`);
    } else if ((answer.size ?? 0) > Number(newest.size)) {
      return {
        ok: false,
        firstBadIndex: Number(newest.size),
        code: 'TRUNCATED',
        problem: `witness ${answer.name} cosigned ${answer.size} events, but the log's newest checkpoint covers ${newest.size}`,
      };
    }
  }
  return result;
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
