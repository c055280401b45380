import {
  execFile,
  spawn,
  spawnSync,
  type ChildProcess,
  type ChildProcessWithoutNullStreams,
} from 'node:child_process';
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

/** Starts the command and returns at once: for one that waits on a person, such as `login` in a browser. */
export function spawnGatehouse(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...databaseEnv(args, env), ...env },
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

/**
 * Signs a demo user in through `gatehouse login --dev-user` (the console's code flow at the development
 * IdP of the demo server on that data dir), so the admin commands that follow act as them, verified.
 * Async: the demo server usually runs in the test process.
 */
export async function loginAs(dataDir: string, user: string): Promise<void> {
  const result = await gatehouseAsync(['login', '--dev-user', user, '--data-dir', dataDir]);
  if (result.code !== 0) throw new Error(`gatehouse login --dev-user ${user} failed: ${result.stderr}`);
}

/** Forgets the login on that data dir: admin commands act as the unverified local operator again. */
export async function logout(dataDir: string): Promise<void> {
  await gatehouseAsync(['logout', '--data-dir', dataDir]);
}

/**
 * A long-running command (`witness serve`) as its own process: answers once it printed its first line
 * of stdout (the address it listens on), and the child to stop.
 */
export async function gatehouseServer(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; firstLine: string; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const firstLine = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${stderr}`)));
  });
  return { child, firstLine, stderr: () => stderr };
}
