import type { Command } from 'commander';
import { commandConfig, progressBar, withCommonOptions, type CommonOptions } from '../context.js';

interface ServeOptions extends CommonOptions {
  demo?: boolean;
  port?: string;
  host?: string;
  unsafeDemoOnNetwork?: boolean;
}

export function registerServeCommand(program: Command): void {
  withCommonOptions(
    program
      .command('serve')
      .description('run the Gatehouse server (gateway, token broker, audit log)')
      .option('--demo', 'embedded demo: development IdP, seeded CRM, demo apps')
      .option('--port <port>', 'port to listen on (env PORT)')
      .option('--host <host>', 'address to listen on')
      .option(
        '--unsafe-demo-on-network',
        'let --demo listen beyond loopback (its IdP signs anyone in as admin): closed lab networks only',
      ),
  ).action(async (options: ServeOptions) => {
    const config = commandConfig(options, {
      demo: options.demo || undefined,
      'server.port': options.port,
      'server.host': options.host,
      'server.unsafeDemoOnNetwork': options.unsafeDemoOnNetwork || undefined,
    });
    const bar = progressBar('seeding the embedded CRM');
    const started = Date.now();
    // Loaded on demand: the server pulls in Fastify and oidc-provider, which other commands never need.
    const { startGatehouse } = await import('../../server/index.js');
    const gatehouse = await startGatehouse(config, {
      onSeedProgress: (done, total) => bar.update(done, total),
    });
    bar.stop();
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    process.stderr.write(banner(gatehouse.url, config.dataDir, config.demo, seconds));

    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${signal}: finishing in-flight requests and signing a final checkpoint\n`);
      const force = setTimeout(() => process.exit(1), config.server.shutdownGraceMs);
      force.unref();
      gatehouse.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function banner(url: string, dataDir: string, demo: boolean, seconds: string): string {
  const lines = [
    `Gatehouse is ready at ${url} (${demo ? 'demo mode' : 'production mode'}, data in ${dataDir}, started in ${seconds}s)`,
    `  health:     ${url}/readyz   metrics: ${url}/metrics`,
  ];
  if (demo) {
    lines.push(
      `  ID token:   npx gatehouse dev id-token --user alice --app call-notes`,
      `  exchange:   curl -s ${url}/oauth/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\`,
      `                -d subject_token_type=urn:ietf:params:oauth:token-type:id_token -d client_id=call-notes \\`,
      `                -d scope="read:contact.basic read:contact.reach" -d subject_token=$ID_TOKEN`,
      `  read:       curl -s ${url}/crm/v1/contacts?limit=3 -H "authorization: Bearer $ACCESS_TOKEN"`,
      `  or at once: npx gatehouse dev token --user alice --app call-notes --scope read:contact.basic`,
      `  demo users: alice, bob, erin (sales) · carol (auditor) · dave (admin) · rita (reviewer)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
