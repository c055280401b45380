import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { DependencyUnavailable, GatehouseError, OAuthError } from '../../errors/index.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';
import { loginFile, loginOf, readLogin, removeLogin, saveLogin } from '../login.js';

/** The console client: the platform scopes come only through its sign-in with the user present. */
const consoleClient = 'console';
const consoleScope = 'admin review audit:read maker';
const callbackPath = '/console/callback';

interface LoginOptions extends CommonOptions {
  server?: string;
  devUser?: string;
}

export function registerLoginCommands(program: Command): void {
  withCommonOptions(
    program
      .command('login')
      .description(
        "sign in as yourself through the console's authorization code flow with PKCE (a browser and a " +
          'loopback redirect); admin commands then act with this verified identity',
      )
      .option(
        '--server <url>',
        'the Gatehouse server (default: the demo server of the data dir, else server.publicUrl)',
      )
      .option(
        '--dev-user <name>',
        'demo mode: sign in as this demo user at the development IdP, without a browser',
      ),
  ).action(async (options: LoginOptions) => {
    const config = commandConfig(options);
    const server = options.server ?? (await serverOf(config));
    const answer =
      options.devUser === undefined
        ? await signInWithBrowser(server)
        : await signInAsDevUser(server, options.devUser);
    const login = loginOf(server, answer, new Date());
    await saveLogin(loginFile(config.dataDir), login);
    report(options, `logged in as ${login.user} (${login.role}) at ${server} until ${login.expires_at}`, {
      user: login.user,
      role: login.role,
      scope: login.scope,
      server,
      expires_at: login.expires_at,
    });
  });

  withCommonOptions(
    program.command('logout').description('forget the login; admin commands then act as the local operator'),
  ).action(async (options: CommonOptions) => {
    const removed = await removeLogin(loginFile(commandConfig(options).dataDir));
    report(options, removed ? 'logged out' : 'not logged in', { logged_out: removed });
  });

  withCommonOptions(
    program
      .command('whoami')
      .description('who admin commands act as: the verified login, or the local operator'),
  ).action(async (options: CommonOptions) => {
    const login = await readLogin(loginFile(commandConfig(options).dataDir));
    if (login === undefined) {
      report(options, 'operator (unverified, local): not logged in; run gatehouse login', {
        verified: false,
        user: null,
      });
      return;
    }
    report(options, `${login.user} (${login.role}) at ${login.server} until ${login.expires_at}`, {
      verified: true,
      user: login.user,
      role: login.role,
      scope: login.scope,
      server: login.server,
      expires_at: login.expires_at,
    });
  });
}

async function signInAsDevUser(server: string, user: string): Promise<Record<string, unknown>> {
  const { signInAtDevIdp } = await import('../../devidp/index.js');
  return reach(server, async () =>
    signInAtDevIdp({
      base: server,
      clientId: consoleClient,
      redirectUri: await loopbackRedirectUri(),
      scope: consoleScope,
      user,
    }),
  );
}

/** The demo server of a demo data dir (its development IdP's issuer), else the configured public URL. */
async function serverOf(config: Config): Promise<string> {
  const [{ openGatehouseStore }, { readMeta }] = await Promise.all([
    import('../../database/index.js'),
    import('../../store/index.js'),
  ]);
  const store = await openGatehouseStore(config);
  try {
    const issuer = await readMeta(store.db, 'idp_issuer');
    if ((await readMeta(store.db, 'mode')) === 'demo' && issuer) return issuer.replace(/\/idp$/, '');
  } finally {
    await store.close();
  }
  return config.server.publicUrl ?? `http://${config.server.host}:${config.server.port}`;
}

/**
 * RFC 8252: the user signs in in their browser; the code comes back to a one-shot listener on an
 * ephemeral loopback port, and only this process holds the PKCE verifier to redeem it.
 */
async function signInWithBrowser(server: string): Promise<Record<string, unknown>> {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  let redirectUri = '';
  const code = await new Promise<string>((resolve, reject) => {
    const listener = createServer((request, response) => {
      const url = new URL(request.url ?? '/', redirectUri);
      if (url.pathname !== callbackPath || url.searchParams.get('state') !== state) {
        response.writeHead(404).end();
        return;
      }
      const got = url.searchParams.get('code');
      response
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        .end(got ? 'Signed in to Gatehouse; you can close this tab.' : 'The sign-in did not complete.');
      listener.close();
      if (got) resolve(got);
      else {
        const why = url.searchParams.get('error_description') ?? url.searchParams.get('error') ?? 'no code';
        reject(new OAuthError('OAUTH_ACCESS_DENIED', `the sign-in did not complete: ${why}`));
      }
    });
    listener.on('error', reject);
    listener.listen(0, '127.0.0.1', () => {
      redirectUri = `http://127.0.0.1:${(listener.address() as AddressInfo).port}${callbackPath}`;
      const authorize = new URL('/oauth/authorize', server);
      authorize.search = new URLSearchParams({
        response_type: 'code',
        client_id: consoleClient,
        redirect_uri: redirectUri,
        scope: consoleScope,
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      }).toString();
      process.stderr.write(`Open this URL in your browser to sign in:\n${authorize.toString()}\n`);
    });
  });
  return reach(server, async () => {
    const response = await fetch(new URL('/oauth/token', server), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: consoleClient,
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
      }).toString(),
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (!response.ok) {
      throw new OAuthError(
        'OAUTH_ACCESS_DENIED',
        `the sign-in did not complete: ${String(body.error_description ?? body.error)}`,
      );
    }
    return body;
  });
}

/** A loopback redirect URI on a port free now: the development IdP's sign-in reads the code, never follows it. */
async function loopbackRedirectUri(): Promise<string> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as AddressInfo;
  await new Promise((resolve) => listener.close(resolve));
  return `http://127.0.0.1:${port}${callbackPath}`;
}

async function reach<T>(server: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `no Gatehouse server answers at ${server}; start it first`,
      {
        cause: error,
      },
    );
  }
}
