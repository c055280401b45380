import type { Command } from 'commander';
import { mintDevIdToken } from '../../devidp/index.js';
import { GatehouseError } from '../../errors/index.js';
import { openLocalSecretStore } from '../../secrets/index.js';
import { openStore, readMeta } from '../../store/index.js';
import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

interface DemoDir {
  url: string | undefined;
  issuer: string;
}

/** The demo a data dir holds: where it was last served and its IdP's issuer; DEMO_ONLY otherwise. */
async function demoOf(options: CommonOptions, command: string): Promise<DemoDir> {
  const config = commandConfig(options);
  const store = await openStore(config);
  try {
    const [mode, issuer, url] = await Promise.all([
      readMeta(store.db, 'mode'),
      readMeta(store.db, 'idp_issuer'),
      readMeta(store.db, 'public_url'),
    ]);
    if (mode !== 'demo' || !issuer) {
      throw new GatehouseError(
        'DEMO_ONLY',
        `${command} works only on a demo data dir; start the demo first (npm start) or pass the demo's --data-dir (now ${config.dataDir})`,
      );
    }
    return { url: url ?? undefined, issuer };
  } finally {
    await store.close();
  }
}

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('development helpers (demo mode only)');
  withCommonOptions(
    dev
      .command('id-token')
      .description('print an ID token for a demo user, signed by the development IdP')
      .requiredOption('--user <name>', 'demo user: alice, bob, erin, carol, dave or rita'),
  ).action(async (options: CommonOptions & { user: string }) => {
    const { issuer } = await demoOf(options, 'dev id-token');
    const config = commandConfig(options);
    const token = await mintDevIdToken({
      config,
      secrets: openLocalSecretStore(config.dataDir),
      user: options.user,
      issuer,
    });
    report(options, token, { id_token: token, issuer, user: options.user });
  });

  withCommonOptions(
    dev
      .command('token')
      .description(
        "print an access token of an app for a demo user, through the running demo's token exchange",
      )
      .requiredOption('--user <name>', 'demo user: alice, bob, erin, carol, dave or rita')
      .requiredOption('--app <client-id>', 'the app asking: call-notes, pipeline-dashboard, ...')
      .requiredOption(
        '--scope <scopes>',
        'space-separated scopes, e.g. "read:contact.basic read:contact.reach"',
      ),
  ).action(async (options: CommonOptions & { user: string; app: string; scope: string }) => {
    const { url, issuer } = await demoOf(options, 'dev token');
    const config = commandConfig(options);
    const subject = await mintDevIdToken({
      config,
      secrets: openLocalSecretStore(config.dataDir),
      user: options.user,
      issuer,
    });
    const answer = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        subject_token: subject,
        client_id: options.app,
        scope: options.scope,
      }),
    }).catch((cause: unknown) => {
      throw new GatehouseError(
        'DEPENDENCY_UNAVAILABLE',
        `no Gatehouse answers at ${url}: start the demo on this data dir (npm start, or gatehouse serve --demo --data-dir ${config.dataDir})`,
        { cause },
      );
    });
    const body = (await answer.json().catch(() => ({}))) as Record<string, unknown>;
    if (!answer.ok || typeof body.access_token !== 'string') {
      throw new GatehouseError(
        answer.status === 400 ? 'INVALID_INPUT' : 'DEPENDENCY_UNAVAILABLE',
        `the token exchange refused: ${String(body.error ?? answer.status)}: ${String(body.error_description ?? body.detail ?? '')}`,
      );
    }
    report(options, body.access_token, body);
  });
}
