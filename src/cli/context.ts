import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { loadConfig, type Config } from '../config/index.js';
import type { GatehouseModules } from '../server/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Store } from '../store/index.js';

/** Options every command takes. */
export interface CommonOptions {
  dataDir?: string;
  config?: string;
  json?: boolean;
}

/** Adds --data-dir, --config and --json to a command. */
export function withCommonOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'data directory').env('GATEHOUSE_DATA_DIR'))
    .option('--config <file>', 'configuration file (YAML or JSON)')
    .option('--json', 'machine-readable output');
}

export function commandConfig(
  options: CommonOptions,
  overrides: Record<string, unknown> = {},
  profile?: Readonly<Record<string, unknown>>,
): Config {
  return loadConfig({ file: options.config, overrides: { dataDir: options.dataDir, ...overrides }, profile });
}

/**
 * The modules of the data dir as the server builds them (the configured CRM, the same audit log, as a
 * client that never takes a cluster role), for one command; closed after `work`.
 */
export async function withModules<T>(
  options: CommonOptions,
  work: (modules: GatehouseModules) => Promise<T>,
): Promise<T> {
  const { openGatehouseModules } = await import('../server/index.js');
  const modules = await openGatehouseModules(commandConfig(options), { role: 'cli' });
  try {
    return await work(modules);
  } finally {
    await modules.close();
  }
}

/** Prints a result: the human text, or the JSON value with --json. */
export function report(options: CommonOptions, human: string, json: unknown): void {
  process.stdout.write(options.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

/**
 * A progress bar on stderr for long work, so stdout stays clean for --json and pipes. Silent when
 * stderr is not a terminal, except for a final line.
 */
export function progressBar(label: string): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(done, total) {
        const now = Date.now();
        if (now - last > 2000 || done === total) {
          last = now;
          process.stderr.write(`${label}: ${done}/${total}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
    stream: process.stderr,
    hideCursor: true,
  });
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * Runs `work` with the secret store of the configured database (secrets live there, not in the data
 * dir, so a command sees what every node sees), and closes the store after.
 */
export async function withSecrets<T>(
  config: Config,
  work: (secrets: SecretStore, db: Store['db']) => Promise<T>,
): Promise<T> {
  const [{ openSecretService }, { openGatehouseStore }] = await Promise.all([
    import('../secrets/index.js'),
    import('../database/index.js'),
  ]);
  const store = await openGatehouseStore(config);
  try {
    const { secrets, keys } = await openSecretService(config, store.db);
    try {
      return await work(secrets, store.db);
    } finally {
      await keys.close();
    }
  } finally {
    await store.close();
  }
}

/** The secret store for a command that keeps no store open: each call opens the database briefly. */
export function commandSecrets(config: Config): SecretStore {
  return {
    get: (name) => withSecrets(config, (secrets) => secrets.get(name)),
    putIfAbsent: (name, value) => withSecrets(config, (secrets) => secrets.putIfAbsent(name, value)),
    delete: (name) => withSecrets(config, (secrets) => secrets.delete(name)),
    list: (prefix) => withSecrets(config, (secrets) => secrets.list(prefix)),
  };
}
