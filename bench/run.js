#!/usr/bin/env node
// What governance costs per request, measured side by side in one run: a plain Node `http` server and a
// bare Fastify route reading the same contact (and a page of 20) from the same SQLite file with
// better-sqlite3, the plain server again with the least every governed answer needs (an audit event
// durable before the answer: bench/servers/plain-audited.js), then the whole gateway pipeline with a
// real token (authenticate, limits, Cedar, shape, fetch, mask, consent, DLP, bulk guard, audit event
// durable before the answer, detection). Each server
// runs alone in its own process (bench/servers/), one after another; the load comes from wrk when it is
// installed, else from autocannon (which costs a core of its own). Reported per scenario: req/s, p50/p99,
// the server's CPU ms per request and peak RSS, and the ratios against the plain-http baseline.
// Usage: npm run bench [-- --seconds 10 --connections 32 --json --profile]
// `--profile` runs the gateway's one-contact scenario again under `node --cpu-prof` (the profile is kept
// in artefacts/profiles/) and prints where the time goes by stage and the hottest functions.
// `--backend postgres` runs the scale-out bench instead (bench/scale.js): 1 and 2 nodes on PostgreSQL
// and Redis, and the audit sequencer's integration rate.
// `--soak N` (either backend) keeps a gateway under load for N seconds and reports its RSS over time.
// `--crm salesforce` puts the Salesforce fake behind the gateway, and the fake called directly (the same
// contact by SOQL over HTTP, with the connected app's own session) is measured beside the baselines.
import { execFile, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { loadConfig } from '../dist/config/index.js';
import { authorizeRequest, createPolicyCaches } from '../dist/policy/index.js';
import { loadPolicySet } from '../dist/policy-library/index.js';
import { mintDevIdToken } from '../dist/devidp/index.js';
import { hasWrk, parseWrk, rssMb, slopePerMinute } from './load.js';
import { withNodeSecrets } from './secrets.js';
import { dlpBench, printDlpTable } from './dlp.js';
import { hottestFunctions, profileWindow, stageBreakdown } from './stages.js';

const run = promisify(execFile);
const autocannonBin = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url));

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'sqlite' },
    dlp: { type: 'boolean', default: false },
    detect: { type: 'boolean', default: false },
    users: { type: 'string', default: '100' },
    crm: { type: 'string', default: 'embedded' },
    soak: { type: 'string', default: '0' },
  },
});
if (values.help) {
  console.log(
    'usage: npm run bench [-- --backend sqlite|postgres [--soak SECONDS] --crm embedded|salesforce --seconds 10 --warmup 2 --connections 32 --json --profile --dlp | --detect --users 100 [--profile]]',
  );
  process.exit(0);
}
if (values.crm !== 'embedded' && values.crm !== 'salesforce') {
  console.error(`bench: --crm must be embedded or salesforce, not ${values.crm}`);
  process.exit(2);
}
if (values.backend !== 'sqlite' && values.backend !== 'postgres') {
  console.error(`bench: --backend must be sqlite or postgres, not ${values.backend}`);
  process.exit(2);
}
// --dlp: only the detectors' precision and recall on the labelled corpus (seconds, no server).
if (values.dlp) {
  const dlp = dlpBench();
  if (values.json) console.log(JSON.stringify(dlp, null, 2));
  else printDlpTable(dlp);
  process.exit(0);
}
// --detect: detection to containment, per user exporting until contained (bench/detect.js).
if (values.detect) {
  const { detectBench } = await import('./detect.js');
  const rows = await detectBench(values);
  if (values.json) console.log(JSON.stringify(rows, null, 2));
  else {
    console.log('| detection → containment | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.measure} | ${r.n} | ${r.p50_ms} | ${r.p99_ms} | ${r.max_ms} |`);
  }
  process.exit(0);
}
if (values.backend === 'postgres') {
  const { scaleBench } = await import('./scale.js');
  process.exit(await scaleBench(values));
}

const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const config = loadConfig({
  env: {},
  file: fileURLToPath(new URL('./gatehouse.bench.yaml', import.meta.url)),
  overrides: { dataDir, demo: true, logLevel: 'warn', 'server.port': 0, 'crm.kind': values.crm },
});
const connections = values.connections;
const port = await freePort();
const loader = (await hasWrk()) ? 'wrk' : 'autocannon';
if (loader === 'autocannon') {
  process.stderr.write(
    'bench: wrk is not installed (apt-get install wrk); autocannon drives the load instead, and it costs a core of its own\n',
  );
}

try {
  const policy = await policyBench();
  const dlp = dlpBench();
  // The first start seeds the data dir; the token and the contact's id are taken from it.
  const setup = await startServer('gateway', [dataDir, values.crm, port]);
  process.stderr.write('\n');
  const token = await accessToken(setup.url);
  let gatewayHeaders = { authorization: `Bearer ${token}` };
  // A fresh token for every gateway run: a run must not outlast its token's lifetime.
  const startGateway = async (execArgv) => {
    const gateway = await startServer('gateway', [dataDir, values.crm, port], execArgv);
    gatewayHeaders = { authorization: `Bearer ${await accessToken(gateway.url)}` };
    return gateway;
  };
  const list = await (
    await fetch(`${setup.url}/crm/v1/contacts?limit=1`, { headers: gatewayHeaders })
  ).json();
  const id = list.records[0].id;
  const direct = values.crm === 'salesforce' ? await salesforceDirect(id, setup) : undefined;
  if (!direct) await setup.exit();
  const database = join(dataDir, 'gatehouse.db');
  const over = values.crm === 'salesforce' ? ' over the Salesforce fake' : '';
  // Each server runs alone in its own process, one after another; the first is the ratios' baseline.
  const servers = [
    {
      server: 'plain Node http + better-sqlite3, no governance',
      start: () => startServer('plain', [database]),
      one: (url) => ({ url: `${url}/contacts/${encodeURIComponent(id)}` }),
      page: (url) => ({ url: `${url}/contacts` }),
    },
    {
      server: 'bare Fastify + better-sqlite3, no governance',
      start: () => startServer('fastify', [database]),
      one: (url) => ({ url: `${url}/contacts/${encodeURIComponent(id)}` }),
      page: (url) => ({ url: `${url}/contacts` }),
    },
    {
      server: 'plain Node http + better-sqlite3 + a durable audit row, no governance',
      start: () => startServer('plain-audited', [database, join(dataDir, 'plain-audit.db')]),
      one: (url) => ({ url: `${url}/contacts/${encodeURIComponent(id)}` }),
      page: (url) => ({ url: `${url}/contacts` }),
    },
    ...(direct
      ? [{ server: direct.name, start: async () => setup, one: () => direct, page: undefined }]
      : []),
    {
      server: `gateway${over}, full pipeline`,
      start: () => (direct ? setup : startGateway()),
      one: (url) => ({ url: `${url}/crm/v1/contacts/${encodeURIComponent(id)}`, headers: gatewayHeaders }),
      page: (url) => ({ url: `${url}/crm/v1/contacts?limit=20`, headers: gatewayHeaders }),
    },
  ];
  const results = [];
  for (const { server, start, one, page } of servers) {
    const process_ = await start();
    for (const [what, target] of [
      ['one contact', one],
      ['page of 20', page],
    ]) {
      if (!target) continue;
      results.push({ scenario: `${server}: ${what}`, ...(await measure(process_, target(process_.url))) });
    }
    if (process_ !== setup || server.startsWith('gateway')) await process_.exit();
  }
  const plainOne = results[0];
  const plainPage = results[1];
  for (const r of results) {
    const baseline = r.scenario.endsWith('page of 20') ? plainPage : plainOne;
    r.ratio_to_plain_rps = round3(r.requests_per_second / baseline.requests_per_second);
    r.ratio_to_plain_cpu = round3(r.cpu_ms_per_request / baseline.cpu_ms_per_request);
  }
  // --soak N: the gateway under load for N seconds, its RSS sampled every 5 s (growth means a leak).
  const memory =
    Number(values.soak) > 0 ? await soakGateway(await startGateway(), servers.at(-1)) : undefined;
  let profile;
  if (values.profile) {
    // A run of its own under `node --cpu-prof`: the sampler slows what it watches.
    const profileDir = fileURLToPath(new URL('../artefacts/profiles/', import.meta.url));
    mkdirSync(profileDir, { recursive: true });
    const gateway = await startGateway(['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
    const target = servers.at(-1).one(gateway.url);
    process.stderr.write(`gateway: one contact, ${values.seconds}s under --cpu-prof\n`);
    if (Number(values.warmup) > 0) await load(target, values.warmup);
    const from = (await gateway.ask('start')).atMicros;
    const { requests, non2xx } = await load(target, values.seconds);
    const to = (await gateway.ask('stop')).atMicros;
    await gateway.exit();
    const file = newestProfile(profileDir);
    // Start-up and warm-up are left out: only the samples of the measured window count.
    const cpuProfile = profileWindow(JSON.parse(readFileSync(file, 'utf8')), from, to);
    profile = {
      file,
      requests,
      non_2xx: non2xx,
      stages: stageBreakdown(cpuProfile).map(([stage, ms]) => ({
        stage,
        ms_per_request: round3(ms / requests),
      })),
      hottest: hottestFunctions(cpuProfile, 15).map((f) => ({
        ...f,
        ms_per_request: round3(f.ms / requests),
      })),
    };
  }
  const gatewayOne = results.find(
    (r) => r.scenario.startsWith('gateway') && r.scenario.endsWith('one contact'),
  );
  const fastifyOne = results[2];
  // A single-record read asks Cedar once (record and row filter in one ask): its share of the request.
  const perRequestMs = policy[1].p50_us / 1000;
  const policyShare = perRequestMs / gatewayOne.latency_ms_p50;
  const summary = {
    loader,
    connections: Number(connections),
    seconds: Number(values.seconds),
    load_average: loadavg().map((l) => Math.round(l * 100) / 100),
    results,
    cpu_ratio_gateway_to_fastify: round3(gatewayOne.cpu_ms_per_request / fastifyOne.cpu_ms_per_request),
    profile,
    memory,
    policy,
    policy_share_of_one_record_p50: policyShare,
    dlp,
  };
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else printSummary(summary, perRequestMs);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

function printSummary(summary, perRequestMs) {
  printDlpTable(summary.dlp);
  console.log('');
  console.log('| Cedar decision | decisions/s | p50 µs | p99 µs |\n|---|---|---|---|');
  for (const p of summary.policy)
    console.log(`| ${p.scenario} | ${p.decisions_per_second} | ${p.p50_us} | ${p.p99_us} |`);
  console.log(
    `\nthe cached decision of one record read: ${perRequestMs.toFixed(3)} ms of the gateway's p50 (${(summary.policy_share_of_one_record_p50 * 100).toFixed(2)}%)\n`,
  );
  console.log(
    `load: ${summary.loader}${summary.loader === 'autocannon' ? ' (costs a core of its own)' : ''}, ${summary.connections} connections, ${summary.seconds} s per scenario; load average ${summary.load_average.join(' ')}\n`,
  );
  console.log(
    '| scenario | req/s | p50 ms | p99 ms | non-2xx | server CPU ms/req | peak RSS MB | × plain req/s | × plain CPU/req |\n|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of summary.results) {
    console.log(
      `| ${r.scenario} | ${r.requests_per_second} | ${r.latency_ms_p50} | ${r.latency_ms_p99} | ${r.non_2xx} | ${r.cpu_ms_per_request} | ${r.peak_rss_mb} | ${r.ratio_to_plain_rps} | ${r.ratio_to_plain_cpu} |`,
    );
  }
  console.log(
    `\nserver CPU per request, gateway / bare Fastify (one contact): ${summary.cpu_ratio_gateway_to_fastify}`,
  );
  if (summary.memory) {
    const m = summary.memory;
    console.log(
      `\nsoak, gateway (one contact), ${m.seconds} s under load (${m.non_2xx} non-2xx): RSS ${m.start_mb} MB at the start, ${m.peak_mb} MB peak, ${m.end_mb} MB at the end; slope ${m.slope_mb_per_minute} MB/min over the run, ${m.second_half_slope_mb_per_minute} MB/min over its second half`,
    );
  }
  const { profile } = summary;
  if (!profile) return;
  console.log(
    `\nprofile of the one-contact gateway run (${profile.requests} requests, ${profile.non_2xx} non-2xx): ${profile.file}`,
  );
  console.log('\n| where one-contact time goes | ms/req |\n|---|---|');
  for (const s of profile.stages) console.log(`| ${s.stage} | ${s.ms_per_request} |`);
  console.log('\n| hottest functions (self time) | where | ms/req |\n|---|---|---|');
  for (const f of profile.hottest) console.log(`| ${f.name} | ${f.where} | ${f.ms_per_request} |`);
}

/** Starts one bench server (bench/servers/<name>.js) in its own process; resolves when it listens. */
function startServer(name, args, execArgv = []) {
  const child = fork(fileURLToPath(new URL(`./servers/${name}.js`, import.meta.url)), args, {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`bench server ${name} exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message);
      });
    });
  return next().then((ready) => ({
    ...ready,
    pid: child.pid,
    ask: (message) => {
      const answer = next();
      child.send(message);
      return answer;
    },
    exit: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.send('exit');
      }),
  }));
}

/** Warm-up, then the measured run, with the server's own CPU time and peak RSS over that run. */
async function measure(server, target) {
  process.stderr.write(
    `${target.url}: ${values.warmup}s warm-up, ${values.seconds}s, ${connections} connections\n`,
  );
  if (Number(values.warmup) > 0) await load(target, values.warmup);
  await server.ask('start');
  const result = await load(target, values.seconds);
  const { cpuMs, peakRssMb } = await server.ask('stop');
  const requests = Math.max(1, result.requests);
  return {
    requests_per_second: Math.round(result.requests / Number(values.seconds)),
    latency_ms_p50: result.p50,
    latency_ms_p99: result.p99,
    non_2xx: result.non2xx,
    cpu_ms_per_request: round3(cpuMs / requests),
    peak_rss_mb: peakRssMb,
  };
}

/** The gateway under load for --soak seconds, its RSS sampled every 5 s: start, peak, end and slopes. */
async function soakGateway(gateway, { one }) {
  const seconds = Number(values.soak);
  process.stderr.write(`soak: gateway, one contact, ${seconds}s under load, RSS every 5 s\n`);
  const samples = [];
  const started = performance.now();
  const sample = () => samples.push([(performance.now() - started) / 1000, rssMb(gateway.pid).rss]);
  sample();
  const timer = setInterval(sample, 5000);
  try {
    const { non2xx } = await load(one(gateway.url), values.soak);
    sample();
    const rss = samples.map(([, mb]) => mb);
    return {
      seconds,
      non_2xx: non2xx,
      start_mb: rss[0],
      peak_mb: Math.max(...rss, rssMb(gateway.pid).peak),
      end_mb: rss.at(-1),
      slope_mb_per_minute: round3(slopePerMinute(samples)),
      second_half_slope_mb_per_minute: round3(slopePerMinute(samples.filter(([at]) => at >= seconds / 2))),
    };
  } finally {
    clearInterval(timer);
    await gateway.exit();
  }
}

/** Drives load at a target for `seconds`: requests done, p50 and p99 in ms, non-2xx answers and errors. */
async function load(target, seconds) {
  const headerArgs = (flag, separator) =>
    Object.entries(target.headers ?? {}).flatMap(([name, value]) => [flag, `${name}${separator}${value}`]);
  if (loader === 'wrk') {
    const { stdout } = await run('wrk', [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--latency',
      ...headerArgs('-H', ': '),
      target.url,
    ]);
    return parseWrk(stdout);
  }
  const { stdout } = await run(
    process.execPath,
    [autocannonBin, '-j', '-c', connections, '-d', seconds, ...headerArgs('-H', '='), target.url],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout);
  return {
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });
}

function newestProfile(dir) {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/**
 * Cedar decisions in-process on the shipped library: a record decision (pre-parsed policy set,
 * statefulIsAuthorized) and a row filter (partial evaluation compiled into a query filter), each with
 * every call a cache miss (a new owner or user each time) and then the same question again (a hit).
 */
async function policyBench() {
  const library = await loadPolicySet();
  const principal = (user) => ({
    userId: user,
    email: `${user}@example.com`,
    role: 'sales_rep',
    territory: 'EMEA',
    appId: 'call-notes',
    clientId: 'call-notes',
    scopes: ['read:contact.basic', 'read:contact.reach'],
  });
  const context = { fields: ['first_name', 'email'], recordCount: 20, ip: '127.0.0.0/24', time: new Date() };
  const record = (i) => ({
    principal: principal('alice'),
    action: 'read',
    object: 'contact',
    resource: { id: 'c1', territory: 'EMEA', owner: `o${i}@example.com`, account: 'a1' },
    context,
  });
  const rows = (i) => ({ principal: principal(`u${i}`), action: 'read', object: 'contact', context });
  const scenarios = [
    { scenario: 'record, uncached', n: 3000, input: record },
    { scenario: 'record, cached', n: 30000, input: () => record(0) },
    { scenario: 'row filter, uncached', n: 500, input: rows },
    { scenario: 'row filter, cached', n: 30000, input: () => rows(0) },
  ];
  const out = [];
  for (const { scenario, n, input } of scenarios) {
    process.stderr.write(`Cedar: ${scenario}, ${n} decisions\n`);
    const caches = createPolicyCaches();
    for (let i = 0; i < 50; i++) authorizeRequest(library, input(n + i), caches); // warm-up (and the cached entry)
    const samples = new Float64Array(n);
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      authorizeRequest(library, input(i), caches);
      samples[i] = Number(process.hrtime.bigint() - t) / 1000;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    samples.sort();
    const at = (q) => Math.round(samples[Math.min(n - 1, Math.floor(q * n))] * 10) / 10;
    out.push({ scenario, decisions_per_second: Math.round(n / seconds), p50_us: at(0.5), p99_us: at(0.99) });
  }
  return out;
}

/** The same contact read from the Salesforce fake directly: one SOQL query with the connected app's session. */
async function salesforceDirect(id, gatehouse) {
  const { demoConnectedApp, soqlLiteral } = await import('../dist/crm/salesforce/index.js');
  const { SignJWT } = await import('jose');
  const { createPrivateKey } = await import('node:crypto');
  const pem = await withNodeSecrets(config, (secrets) => secrets.get(config.crm.salesforce.privateKeySecret));
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(demoConnectedApp.clientId)
    .setSubject(demoConnectedApp.username)
    .setAudience(gatehouse.crmVendorUrl)
    .setExpirationTime('3m')
    .sign(createPrivateKey(Buffer.from(pem)));
  const session = await (
    await fetch(`${gatehouse.crmVendorUrl}/services/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
    })
  ).json();
  const soql = `SELECT Id, FirstName, LastName, Title, AccountId, Email, Phone FROM Contact WHERE Id = ${soqlLiteral(id, 'id')}`;
  return {
    name: 'Salesforce fake called directly (one contact by SOQL), no governance',
    url: `${gatehouse.crmVendorUrl}/services/data/v62.0/query?q=${encodeURIComponent(soql)}`,
    headers: { authorization: `Bearer ${session.access_token}` },
  };
}

function round3(value) {
  return Math.round(value * 1000) / 1000;
}

async function accessToken(url) {
  const subjectToken = await withNodeSecrets(config, (secrets) =>
    mintDevIdToken({
      config,
      secrets,
      user: 'alice',
      issuer: `${url}/idp`,
      // The exchange is bound to the app asking: an ID token issued to its own IdP client.
      audience: 'call-notes',
    }),
  );
  const response = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: 'call-notes',
      scope: 'read:account.basic read:contact.basic read:contact.reach',
    }),
  });
  return (await response.json()).access_token;
}
