import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodeJwt } from 'jose';
import { DependencyUnavailable, errorRegistry, GatehouseError, type ErrorCode } from '../errors/index.js';
import { commandConfig, type CommonOptions } from './context.js';

/** What `gatehouse login` keeps: a short-lived console access token and the server it is for. */
export interface CliLogin {
  server: string;
  user: string;
  role: string;
  scope: string;
  access_token: string;
  /** ISO 8601; the login is gone after it (no refresh token is kept). */
  expires_at: string;
}

/**
 * The actor of a command run without a login: only an operator on the server host can open the data
 * dir, but nothing proves who they are, so it never satisfies separation of duties.
 */
export const localOperator = { id: 'operator (unverified, local)', role: 'operator' } as const;

export function loginFile(dataDir: string): string {
  return join(
    process.env.XDG_CONFIG_HOME ?? dataDir,
    process.env.XDG_CONFIG_HOME ? 'gatehouse' : '',
    'cli-login.json',
  );
}

/** The login of a token response, with who it names (read from the token the server just issued). */
export function loginOf(server: string, answer: Record<string, unknown>, now: Date): CliLogin {
  const token = String(answer.access_token);
  const claims = decodeJwt(token);
  return {
    server,
    user: String(claims.email ?? claims.sub),
    role: typeof claims.role === 'string' ? claims.role : '',
    scope: String(answer.scope ?? claims.scope ?? ''),
    access_token: token,
    expires_at: new Date(now.getTime() + Number(answer.expires_in ?? 0) * 1000).toISOString(),
  };
}

export async function saveLogin(file: string, login: CliLogin): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  // writeFile keeps the mode of a file that already exists.
  await chmod(file, 0o600);
}

/** The stored login, if there is one that has not expired; an expired one is removed. */
export async function readLogin(file: string, now = new Date()): Promise<CliLogin | undefined> {
  let login: CliLogin;
  try {
    login = JSON.parse(await readFile(file, 'utf8')) as CliLogin;
  } catch {
    return undefined;
  }
  if (!(Date.parse(login.expires_at) > now.getTime())) {
    await removeLogin(file);
    return undefined;
  }
  return login;
}

/** The login of `gatehouse login` for the command's data dir, if one is current. */
export async function currentLogin(options: CommonOptions): Promise<CliLogin | undefined> {
  return readLogin(loginFile(commandConfig(options).dataDir));
}

export async function removeLogin(file: string): Promise<boolean> {
  try {
    await rm(file);
    return true;
  } catch {
    return false;
  }
}

/** Calls the admin API as the logged-in user; a problem answer becomes the server's error, one line. */
export async function callAdmin(
  login: CliLogin,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(new URL(path, login.server), {
      method,
      headers: {
        authorization: `Bearer ${login.access_token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `no Gatehouse server answers at ${login.server}; start it, or run gatehouse logout to act locally`,
      { cause: error },
    );
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.ok) return answer;
  const code = String(answer.code) in errorRegistry ? (String(answer.code) as ErrorCode) : 'INTERNAL';
  throw new GatehouseError(code, String(answer.detail ?? `the server answered ${response.status}`));
}
