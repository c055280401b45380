import type { Command } from 'commander';
import type { ClientInfo } from '../../broker/index.js';
import { DependencyUnavailable, GatehouseError, InputError } from '../../errors/index.js';
import type { Store } from '../../store/index.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('development helpers (demo mode only)');
  withCommonOptions(
    dev
      .command('id-token')
      .description('print an ID token for a demo user, signed by the development IdP')
      .requiredOption('--user <name>', 'demo user: alice, bob, erin, carol, dave or rita')
      .option('--app <app>', "issue it to this app's own IdP client (for token exchange at that app)"),
  ).action(async (options: CommonOptions & { user: string; app?: string }) => {
    const { mintDevIdToken, openSecretService, openGatehouseStore } = await devModules();
    const config = commandConfig(options);
    const store = await openGatehouseStore(config);
    try {
      const issuer = await demoIssuer(store, 'dev id-token');
      const client = options.app === undefined ? undefined : await appClient(store, options.app);
      const secrets = (await openSecretService(config, store.db)).secrets;
      const audience = client?.idpClientId;
      const token = await mintDevIdToken({ config, secrets, user: options.user, issuer, audience });
      report(options, token, {
        id_token: token,
        issuer,
        user: options.user,
        audience: audience ?? config.idp.audience,
      });
    } finally {
      await store.close();
    }
  });

  withCommonOptions(
    dev
      .command('token')
      .description(
        "print an access token for a demo user at an app: by token exchange with the app's own ID token, " +
          "or, for platform scopes, through the console's sign-in at the development IdP (needs the demo server running)",
      )
      .requiredOption('--user <name>', 'demo user: alice, bob, erin, carol, dave or rita')
      .requiredOption('--app <app>', 'the app (client id): call-notes, pipeline-dashboard, console, ...')
      .requiredOption('--scope <scopes>', 'space-separated scopes'),
  ).action(async (options: CommonOptions & { user: string; app: string; scope: string }) => {
    const { mintDevIdToken, openSecretService, openGatehouseStore, platformScopes, signInAtDevIdp } =
      await devModules();
    const config = commandConfig(options);
    const store = await openGatehouseStore(config);
    let answer: Record<string, unknown>;
    try {
      const issuer = await demoIssuer(store, 'dev token');
      const client = await appClient(store, options.app);
      const base = issuer.replace(/\/idp$/, '');
      const platform = options.scope.split(' ').some((scope) => platformScopes.includes(scope));
      answer = await reachServer(base, async () => {
        if (platform) {
          const redirectUri = client.redirectUris?.[0];
          if (redirectUri === undefined)
            throw new InputError(`${options.app} has no redirect URI to sign in with`);
          return signInAtDevIdp({
            base,
            clientId: client.clientId,
            redirectUri,
            scope: options.scope,
            user: options.user,
          });
        }
        const subjectToken = await mintDevIdToken({
          config,
          secrets: (await openSecretService(config, store.db)).secrets,
          user: options.user,
          issuer,
          audience: client.idpClientId,
        });
        return exchangeAt(base, client.clientId, subjectToken, options.scope);
      });
    } finally {
      await store.close();
    }
    report(options, String(answer.access_token), answer);
  });
}

/** What the dev commands run on, loaded only when one runs (not for `--help` or other commands). */
async function devModules() {
  const [broker, catalog, devidp, secrets, database] = await Promise.all([
    import('../../broker/index.js'),
    import('../../catalog/index.js'),
    import('../../devidp/index.js'),
    import('../../secrets/index.js'),
    import('../../database/index.js'),
  ]);
  return { ...broker, ...catalog, ...devidp, ...secrets, ...database };
}

/** The development IdP's issuer of a demo data dir, or DEMO_ONLY. */
async function demoIssuer(store: Store, command: string): Promise<string> {
  const { readMeta } = await import('../../store/index.js');
  const [mode, issuer] = [await readMeta(store.db, 'mode'), await readMeta(store.db, 'idp_issuer')];
  if (mode !== 'demo' || !issuer) {
    throw new GatehouseError(
      'DEMO_ONLY',
      `${command} works only on a demo data dir; start the demo first (npm start) or pass --data-dir`,
    );
  }
  return issuer;
}

async function appClient(store: Store, app: string): Promise<ClientInfo> {
  const { clientInfoFromApp, createCatalog } = await devModules();
  const catalog = createCatalog(store.db);
  const client = clientInfoFromApp((await catalog.findApp(app)) ?? (await catalog.findAppByClientId(app)));
  if (!client) throw new InputError(`no app ${app} in the catalog`, { parameter: 'app' });
  return client;
}

async function reachServer<T>(base: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `no Gatehouse server answers at ${base}; start the demo on this data dir (npm start)`,
      { cause: error },
    );
  }
}

async function exchangeAt(
  base: string,
  clientId: string,
  subjectToken: string,
  scope: string,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: clientId,
      scope,
    }),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    // 400 is the request's fault (a scope the app was never approved for); anything else the server's.
    const refused = `the token exchange refused: ${String(body.error ?? response.status)}: ${String(body.error_description ?? body.detail ?? '')}`;
    throw response.status === 400
      ? new InputError(refused)
      : new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', refused);
  }
  return body;
}
