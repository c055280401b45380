import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import type { AttackKind, Scenario, SimulationSummary, SimulationTarget } from '../../detect/index.js';
import { InputError } from '../../errors/index.js';
import {
  commandConfig,
  commandSecrets,
  withCommonOptions,
  withSecrets,
  type CommonOptions,
} from '../context.js';

interface SimulateOptions extends CommonOptions {
  seed: string;
  users: string;
  minutes: string;
  speed: string;
  start: string;
  contacts: string;
  attacks?: string;
  url?: string;
  out: string;
}

/** Zones to pick the off-hours attacker's from: one of them is always in the small hours. */
const nightZones = [
  'Pacific/Auckland',
  'Asia/Tokyo',
  'Asia/Kolkata',
  'Europe/London',
  'America/New_York',
  'America/Los_Angeles',
  'Pacific/Honolulu',
];

/** Where an embedded run's simulated clock starts unless --start says: a Monday, early in Europe. */
const defaultStart = '2026-11-30T07:00:00Z';

/**
 * `gatehouse simulate`: a seeded, simulated day (or week) of the demo apps' use by a few hundred
 * synthetic users, with labelled attacks, against a real Gatehouse, and a report of what the guards
 * and detection did to each. Started here, the Gatehouse runs on the simulator's clock: days play in
 * seconds and a seed gives the same figures every run. At --url, in compressed real time.
 */
export function registerSimulateCommand(program: Command): void {
  withCommonOptions(
    program
      .command('simulate')
      .description(
        'play a seeded, simulated day of ordinary use with labelled attacks against a real Gatehouse; write an HTML report and a JSON summary',
      )
      .option('--seed <n>', 'the scenario seed (same seed, same scenario)', '18')
      .option('--users <n>', 'ordinary synthetic users', '300')
      .option('--minutes <n>', 'simulated minutes (480: a working day; up to 10080, a week)', '480')
      .option(
        '--start <time>',
        'when the simulated span starts, ISO 8601 (embedded mode: the clock the server runs on)',
        defaultStart,
      )
      .option('--speed <n>', 'with --url: simulated seconds per second of real time', '120')
      .option('--contacts <n>', 'contacts in the embedded CRM (embedded mode only)', '25000')
      .option('--attacks <kinds>', 'comma-separated attack kinds to inject (default: all)')
      .option(
        '--url <url>',
        'a running demo to play against (its --data-dir gives the IdP key); default: start one here',
      )
      .option('--out <dir>', 'where to write report.html and summary.json', 'simulation'),
  ).action(async (options: SimulateOptions) => {
    const progress = (line: string) => {
      if (!options.json) process.stderr.write(`simulate: ${line}\n`);
    };
    const summary = await simulate(options, progress);
    process.stdout.write(
      options.json ? `${JSON.stringify(summary, null, 2)}\n` : `${describe(summary, options.out)}\n`,
    );
  });
}

function count(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InputError(`--${name} must be a whole number from ${min} to ${max}`, { parameter: name });
  }
  return n;
}

async function simulate(
  options: SimulateOptions,
  progress: (line: string) => void,
): Promise<SimulationSummary> {
  const detect = await import('../../detect/index.js');
  const seed = count('seed', options.seed, 0, 2 ** 31);
  const speed = count('speed', options.speed, 1, 10_000);
  const contacts = count('contacts', options.contacts, 100, 1_000_000);
  const attacks = options.attacks?.split(',').map((kind) => kind.trim());
  for (const kind of attacks ?? []) {
    if (!(detect.attackKinds as readonly string[]).includes(kind)) {
      throw new InputError(`--attacks: unknown kind ${kind}; one of ${detect.attackKinds.join(', ')}`, {
        parameter: 'attacks',
      });
    }
  }
  const minutes = count('minutes', options.minutes, 1, 7 * 24 * 60);
  const startMs = Date.parse(options.start);
  if (Number.isNaN(startMs)) {
    throw new InputError('--start must be an ISO 8601 time such as 2026-11-30T07:00:00Z', {
      parameter: 'start',
    });
  }
  // The off-hours attack comes halfway through: on the simulated clock, or in compressed real time.
  const attackAt = options.url ? Date.now() + (minutes * 30_000) / speed : startMs + minutes * 30_000;
  const nightZone =
    nightZones.find((timeZone) => {
      const hour = Number(
        new Intl.DateTimeFormat('en-GB', { timeZone, hour: 'numeric', hourCycle: 'h23' }).format(attackAt),
      );
      return hour >= 0 && hour < 5;
    }) ?? 'Pacific/Honolulu';
  const scenario = detect.buildScenario({
    seed,
    users: count('users', options.users, 1, 5000),
    minutes,
    nightZone,
    ...(!options.url && { startMs }),
    ...(attacks && { attacks: attacks as AttackKind[] }),
  });
  progress(
    `seed ${seed}: ${scenario.users.length} users, ${scenario.steps.length} steps over ${minutes} simulated minutes ` +
      (options.url ? `at ${speed}×` : `from ${new Date(startMs).toISOString()} on a simulated clock`),
  );
  const played = options.url
    ? await againstUrl(options, scenario, speed, progress)
    : await embedded(options, scenario, startMs, contacts, progress);
  const summary = detect.summarize(scenario, played.run, {
    speed,
    ...(played.tableSize && { tableSize: played.tableSize }),
  });
  const out = resolve(options.out);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(join(out, 'report.html'), detect.renderReport(scenario, played.run, summary));
  return summary;
}

/** The synthetic users as dev IdP users, with their working hours in their own zones. */
function syntheticOverrides(scenario: Scenario): Record<string, unknown> {
  const users = Object.fromEntries(
    scenario.users.map((u) => [
      u.name,
      { email: u.email, name: u.name, role: u.role, territory: u.territory },
    ]),
  );
  const hours = Object.fromEntries(scenario.users.map((u) => [u.email, { timeZone: u.timeZone }]));
  return { users, hours };
}

async function embedded(
  options: SimulateOptions,
  scenario: Scenario,
  startMs: number,
  contacts: number,
  progress: (line: string) => void,
) {
  const [
    { loadConfig, demoSeedOwners },
    { seedCrm, createFieldKeys },
    { startGatehouse },
    { mintDevIdToken },
    detect,
  ] = await Promise.all([
    import('../../config/index.js'),
    import('../../crm/index.js'),
    import('../../server/index.js'),
    import('../../devidp/index.js'),
    import('../../detect/index.js'),
  ]);
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-simulate-'));
  const synthetic = syntheticOverrides(scenario);
  const base = commandConfig(options);
  const config: Config = loadConfig({
    file: options.config,
    overrides: {
      dataDir,
      demo: true,
      logLevel: 'silent',
      'server.port': 0,
      // The simulator is the proxy: each synthetic user calls from their own network (X-Forwarded-For).
      'server.trustedProxies': ['127.0.0.1', '::1'],
      demoUsers: { ...base.demoUsers, ...(synthetic.users as object) },
      'detect.workingHours.users': synthetic.hours,
      // A day's export budget: plans declare reads per user per day, and the slow export keeps under
      // any hourly budget (20 new contacts at a time, hours apart).
      'limits.bulkExport.windowSeconds': 86_400,
    },
  });
  try {
    progress(`seeding ${contacts} contacts in ${dataDir}`);
    await withSecrets(config, async (secrets, db) => {
      await seedCrm(db, {
        contacts,
        owners: demoSeedOwners(config),
        fieldKeys: createFieldKeys(db, secrets),
      });
    });
    // The server's detection, limits and events run on this clock; the run moves it step by step.
    const clock = detect.simulatedClock(startMs);
    const gatehouse = await startGatehouse(config, { clock });
    progress(`Gatehouse started at ${gatehouse.url} on a simulated clock`);
    const secrets = commandSecrets(config);
    const target = await targetAt(gatehouse.url, (user, audience) =>
      mintDevIdToken({ config, secrets, user, issuer: `${gatehouse.url}/idp`, audience }),
    );
    try {
      const run = await detect.runScenario(scenario, target, {
        speed: 1,
        clock,
        settle: () => gatehouse.detectionIdle(),
        progress,
      });
      return { run, tableSize: contacts };
    } finally {
      await gatehouse.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * The Gatehouse at `url` as the simulator reaches it: ID tokens from `mint`, and browser sign-ins (the
 * console's platform scopes, refresh tokens) through the development IdP's pages.
 */
async function targetAt(url: string, mint: SimulationTarget['idToken']): Promise<SimulationTarget> {
  const [{ signInAtDevIdp }, { demoApps }] = await Promise.all([
    import('../../devidp/index.js'),
    import('../../catalog/index.js'),
  ]);
  return {
    url,
    idToken: mint,
    signIn(user, clientId, scope) {
      const uris = demoApps.find((app) => app.clientId === clientId)?.manifest.redirect_uris;
      const redirectUri = Array.isArray(uris) ? String(uris[0]) : '';
      return signInAtDevIdp({ base: url, clientId, redirectUri, scope, user });
    },
  };
}

async function againstUrl(
  options: SimulateOptions,
  scenario: Scenario,
  speed: number,
  progress: (line: string) => void,
) {
  const [{ mintDevIdToken }, { readMeta }, { openGatehouseStore }, detect] = await Promise.all([
    import('../../devidp/index.js'),
    import('../../store/index.js'),
    import('../../database/index.js'),
    import('../../detect/index.js'),
  ]);
  const url = (options.url ?? '').replace(/\/$/, '');
  if (!/^https?:\/\//.test(url)) throw new InputError('--url must be the http(s) URL of a running demo');
  const synthetic = syntheticOverrides(scenario);
  const base = commandConfig(options);
  const config = { ...base, demoUsers: { ...base.demoUsers, ...(synthetic.users as Config['demoUsers']) } };
  const store = await openGatehouseStore(base);
  let issuer: string | undefined;
  try {
    issuer = await readMeta(store.db, 'idp_issuer');
  } finally {
    await store.close();
  }
  if (!issuer)
    throw new InputError(
      '--data-dir must be the data dir of the running demo (its IdP key signs the users in)',
    );
  const secrets = commandSecrets(base);
  const target = await targetAt(url, (user, audience) =>
    mintDevIdToken({ config, secrets, user, issuer, audience }),
  );
  progress(`playing against ${url} in real time at ${speed}×`);
  return { run: await detect.runScenario(scenario, target, { speed, progress }), tableSize: undefined };
}

function describe(summary: SimulationSummary, out: string): string {
  const ms = (value: number | null) =>
    value === null
      ? '-'
      : summary.clock === 'simulated'
        ? `${(value / 1000).toFixed(1)} simulated s`
        : `${value} ms`;
  const o = summary.ordinary;
  return [
    `simulated ${summary.simulated_minutes} min (seed ${summary.seed}, ${summary.users} users) in ${summary.wall_seconds} s on ${summary.clock === 'simulated' ? 'a simulated clock' : 'real time'}: ${summary.requests} requests`,
    `ordinary: ${o.requests} requests, ${o.refused} refused (${(o.refused_share * 100).toFixed(3)}%), false containments ${o.false_containments}`,
    summary.clock === 'simulated'
      ? 'detection to containment: measured in real time by npm run bench (the simulated clock stands still while detection runs)'
      : `detection to containment: p50 ${ms(summary.detection_to_containment_ms.p50)}, p99 ${ms(summary.detection_to_containment_ms.p99)} (${summary.detection_to_containment_ms.n} incidents)`,
    ...summary.attacks.map((a) =>
      a.simulated
        ? `  ${a.kind.padEnd(22)} ${a.detected ? 'detected' : 'MISSED  '} in ${ms(a.detection_ms)}, contained in ${ms(a.containment_ms)}, ${a.records_read} records${a.share_of_table === null ? '' : ` (${(a.share_of_table * 100).toFixed(2)}% of the table)`} [${a.rules.join(', ')}]`
        : `  ${a.kind.padEnd(22)} not simulated: ${a.note ?? ''}`,
    ),
    `report: ${join(resolve(out), 'report.html')}`,
  ].join('\n');
}
