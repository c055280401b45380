import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { demoProfile } from '../../config/index.js';
import { commandConfig, progressBar, withCommonOptions, type CommonOptions } from '../context.js';

interface ServeOptions extends CommonOptions {
  demo?: boolean;
  port?: string;
  host?: string;
  logFormat?: string;
  unsafeDemoOnNetwork?: boolean;
  crm?: string;
  workers?: string;
}

/** Time the final closers (checkpoint signing, flushes, store) get after the HTTP drain. */
const closersGraceMs = 20_000;

export function registerServeCommand(program: Command): void {
  withCommonOptions(
    program
      .command('serve')
      .description('run the Gatehouse server (gateway, token broker, audit log)')
      .option('--demo', 'embedded demo: development IdP, seeded CRM, demo apps')
      .option('--port <port>', 'port to listen on (env PORT)')
      .option('--host <host>', 'address to listen on')
      .addOption(
        new Option(
          '--crm <kind>',
          'the CRM behind the gateway (crm.kind); with --demo a vendor kind runs on its fake, seeded like the embedded CRM',
        ).choices(['embedded', 'salesforce', 'hubspot']),
      )
      .option(
        '--log-format <format>',
        'auto (human lines on a terminal), pretty or json (env GATEHOUSE_LOG_FORMAT)',
      )
      .option(
        '--workers <n>',
        'processes sharing the listener (server.workers, default 1); see README "Scale-out"',
      )
      .option(
        '--unsafe-demo-on-network',
        'let --demo listen beyond loopback (its IdP signs anyone in as admin): closed lab networks only',
      ),
  ).action(async (options: ServeOptions) => {
    const config = commandConfig(
      options,
      {
        demo: options.demo || undefined,
        'server.port': options.port,
        'server.host': options.host,
        'crm.kind': options.crm,
        'server.unsafeDemoOnNetwork': options.unsafeDemoOnNetwork || undefined,
        // A worker listens where its primary chose (a port 0 resolved once for all of them).
        'server.workers': options.workers,
        ...(process.env.GATEHOUSE_WORKER_PORT !== undefined && {
          'server.port': process.env.GATEHOUSE_WORKER_PORT,
        }),
        logFormat: options.logFormat,
      },
      options.demo ? demoProfile : undefined,
    );
    const started = Date.now();
    const { joinCluster, reportReady, serveWorkers } = await (
      await import('../../server/index.js')
    ).loadClusterWiring();
    const membership = joinCluster();
    if (!membership && config.server.workers > 1) {
      const code = await serveWorkers(config, (info) =>
        process.stderr.write(
          `${banner(info, config.dataDir, config.demo, ((Date.now() - started) / 1000).toFixed(2))}` +
            `  workers:    ${config.server.workers} processes share the listener\n`,
        ),
      );
      process.exit(code);
    }
    const bar = progressBar('seeding the embedded CRM');
    // Loaded on demand: the server pulls in Fastify and oidc-provider, which other commands never need.
    const { startGatehouse } = await import('../../server/index.js');
    const gatehouse = await startGatehouse(config, {
      onSeedProgress: (done, total) => bar.update(done, total),
      ...(membership && { cluster: membership }),
    });
    bar.stop();
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    const { url, metricsUrl, crmVendorUrl } = gatehouse;
    if (membership) reportReady({ url, metricsUrl, crmVendorUrl });
    else process.stderr.write(banner(gatehouse, config.dataDir, config.demo, seconds));

    let stopping = false;
    const stop = (signal: string) => {
      // Repeated signals (an impatient orchestrator, a second Ctrl-C) must not cut the final checkpoint
      // short; SIGKILL remains for a process that truly hangs.
      if (stopping) {
        process.stderr.write(`${signal}: already shutting down; waiting for the final checkpoint\n`);
        return;
      }
      stopping = true;
      process.stderr.write(`${signal}: finishing in-flight requests and signing a final checkpoint\n`);
      // The HTTP drain ends at the grace deadline; this only catches a closer that never returns.
      const force = setTimeout(() => process.exit(1), config.server.shutdownGraceMs + closersGraceMs);
      force.unref();
      gatehouse.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

function banner(
  { url, metricsUrl, crmVendorUrl }: { url: string; metricsUrl?: string; crmVendorUrl?: string },
  dataDir: string,
  demo: boolean,
  seconds: string,
): string {
  const lines = [
    `Gatehouse is ready at ${url} (${demo ? 'demo mode' : 'production mode'}, data in ${dataDir}, started in ${seconds}s)`,
    // With server.metricsPort, /metrics lives on that listener only: the main port answers 404 there.
    `  console:    ${url}/console/`,
    `  health:     ${url}/readyz   metrics: ${metricsUrl ?? `${url}/metrics`}`,
  ];
  if (crmVendorUrl)
    lines.push(`  crm:        the vendor's fake at ${crmVendorUrl} (seeded like the embedded CRM)`);
  if (demo) {
    // The hints must work as printed: they name the data dir unless it is the one they would find anyway.
    const dir = dataDir === resolve('.gatehouse') ? '' : ` --data-dir ${dataDir}`;
    lines.push(
      `  token:      ACCESS_TOKEN=$(npx gatehouse dev token --user alice --app call-notes --scope "read:contact.basic read:contact.reach"${dir})`,
      `  read:       curl -s "${url}/crm/v1/contacts?limit=3" -H "authorization: Bearer $ACCESS_TOKEN"`,
      `  demo users: alice, bob, erin (sales) · carol (auditor) · dave (admin) · rita (reviewer)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
