import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseEnvSync } from './database.js';

const bin = fileURLToPath(new URL('../../bin/gatehouse.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `gatehouse` command as a user would (npm test builds dist/ first). */
export function gatehouse(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...databaseEnv(args, env), ...env },
    timeout: 60_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * The same without blocking the test process: needed whenever the command waits on something that
 * process serves (a webhook receiver, or on PostgreSQL the audit sequencer of a test server).
 */
export function gatehouseAsync(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...databaseEnv(args, env), ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * On PostgreSQL runs (test/support/database.ts), the database of the data dir the command names, so
 * the command sees what a test server on that data dir wrote.
 */
function databaseEnv(args: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const flag = args.indexOf('--data-dir');
  const dataDir = flag >= 0 ? args[flag + 1] : env.GATEHOUSE_DATA_DIR;
  return dataDir ? testDatabaseEnvSync(dataDir) : {};
}
