#!/usr/bin/env node
// What governance costs per request: the same record read (a) by a bare Fastify route straight from
// the same SQLite file and (b) through the whole gateway pipeline with a real token (authenticate,
// limits, policy, shape, fetch, mask, DLP, bulk guard, audit append before the answer). The servers
// run in this process; autocannon runs as a separate process so load and server don't share a loop.
// Usage: npm run bench [-- --seconds 10 --connections 16 --json --profile]
// Each scenario is warmed up first; the server's CPU time and event-loop busy time per request are
// reported beside throughput, since they hold on a machine whose other processes steal cores.
// `--profile` samples the one-contact scenario and prints where its time goes, stage by stage.
// `--backend postgres` runs the scale-out bench instead (bench/scale.js): 1 and 2 nodes on PostgreSQL
// and Redis, and the audit sequencer's integration rate.
// `--crm salesforce` puts the Salesforce fake behind the gateway, and the baseline is that fake called
// directly (the same contact by SOQL over HTTP, with the connected app's own session).
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { loadConfig } from '../dist/config/index.js';
import { authorizeRequest, clearPolicyCaches, loadPolicySet } from '../dist/policy/index.js';
import { mintDevIdToken } from '../dist/devidp/index.js';
import { openLocalSecretStore } from '../dist/secrets/index.js';
import { startGatehouse } from '../dist/server/index.js';
import { dlpBench, printDlpTable } from './dlp.js';
import { stageBreakdown, startProfile } from './stages.js';

const run = promisify(execFile);
const autocannonBin = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url));

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'sqlite' },
    dlp: { type: 'boolean', default: false },
    detect: { type: 'boolean', default: false },
    users: { type: 'string', default: '100' },
    crm: { type: 'string', default: 'embedded' },
  },
});
if (values.help) {
  console.log(
    'usage: npm run bench [-- --backend sqlite|postgres --crm embedded|salesforce --seconds 10 --warmup 2 --connections 16 --json --profile --dlp | --detect --users 100 [--profile]]',
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
// Limits high enough that the bench measures the pipeline, not the rate limiter refusing it.
const config = loadConfig({
  env: {},
  file: fileURLToPath(new URL('./gatehouse.bench.yaml', import.meta.url)),
  overrides: { dataDir, demo: true, logLevel: 'warn', 'server.port': 0, 'crm.kind': values.crm },
});
const gatehouse = await startGatehouse(config, {
  onSeedProgress: (done, total) => process.stderr.write(`\rseeding ${done}/${total}`),
});
process.stderr.write('\n');

const bare = Fastify();
const db = new Database(join(dataDir, 'gatehouse.db'), { readonly: true });
const byId = db.prepare(
  'select id, first_name, last_name, title, account_id, email, phone from crm_contacts where id = ?',
);
bare.get('/contacts/:id', async (request) => byId.get(request.params.id));
await bare.listen({ host: '127.0.0.1', port: 0 });
const bareUrl = `http://127.0.0.1:${bare.server.address().port}`;

try {
  const policy = await policyBench();
  const dlp = dlpBench();
  const token = await accessToken();
  const headers = { authorization: `Bearer ${token}` };
  const list = await (await fetch(`${gatehouse.url}/crm/v1/contacts?limit=1`, { headers })).json();
  const id = list.records[0].id;

  const over = values.crm === 'salesforce' ? ' over the Salesforce fake' : '';
  const baseline =
    values.crm === 'salesforce'
      ? await salesforceDirect(id)
      : { name: 'bare Fastify + SQLite, no governance', url: `${bareUrl}/contacts/${id}`, headers: {} };
  const scenarios = [
    baseline,
    {
      name: `gateway${over}: one contact, full pipeline`,
      url: `${gatehouse.url}/crm/v1/contacts/${id}`,
      headers,
    },
    {
      name: `gateway${over}: page of 20 contacts`,
      url: `${gatehouse.url}/crm/v1/contacts?limit=20`,
      headers,
    },
  ];
  const results = [];
  let stages;
  const restingRss = process.memoryUsage().rss;
  const loadOf = (scenario) => (seconds) => {
    const args = ['-j', '-c', values.connections, '-d', seconds];
    for (const [name, value] of Object.entries(scenario.headers)) args.push('-H', `${name}=${value}`);
    return run(process.execPath, [autocannonBin, ...args, scenario.url], { maxBuffer: 64 * 1024 * 1024 });
  };
  for (const scenario of scenarios) {
    const load = loadOf(scenario);
    process.stderr.write(
      `${scenario.name}: ${values.warmup}s warm-up, ${values.seconds}s, ${values.connections} connections\n`,
    );
    if (Number(values.warmup) > 0) await load(values.warmup);
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const { stdout } = await load(values.seconds);
    const busyMs = performance.eventLoopUtilization(loop).active;
    const cpuUsed = process.cpuUsage(cpu);
    clearInterval(sampler);
    const result = JSON.parse(stdout);
    const requests = Math.max(1, result.requests.total);
    results.push({
      scenario: scenario.name,
      requests_per_second: Math.round(result.requests.average),
      latency_ms_p50: result.latency.p50,
      latency_ms_p99: result.latency.p99,
      non_2xx: result.non2xx + result.errors,
      cpu_ms_per_request: round3((cpuUsed.user + cpuUsed.system) / 1000 / requests),
      loop_busy_ms_per_request: round3(busyMs / requests),
      peak_rss_mb: Math.round(peakRss / 1048576),
    });
  }
  if (values.profile) {
    // A run of its own: the sampler slows what it watches, so the figures above are taken without it.
    process.stderr.write(`${scenarios[1].name}: ${values.seconds}s under the CPU profiler\n`);
    const stopProfile = await startProfile();
    const { stdout } = await loadOf(scenarios[1])(values.seconds);
    const requests = Math.max(1, JSON.parse(stdout).requests.total);
    stages = stageBreakdown(await stopProfile()).map(([stage, ms]) => ({
      stage,
      ms_per_request: ms / requests,
    }));
  }
  const ratio = results[1].requests_per_second / results[0].requests_per_second;
  // Server CPU per request does not depend on how many cores other processes leave to this one.
  const cpuRatio = results[0].cpu_ms_per_request / results[1].cpu_ms_per_request;
  // A single-record read asks Cedar twice (row filter, then the record): their share of the request.
  const perRequestMs = (policy[1].p50_us + policy[3].p50_us) / 1000;
  const policyShare = perRequestMs / results[1].latency_ms_p50;
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          results,
          ratio_gateway_to_bare: ratio,
          cpu_ratio_gateway_to_bare: cpuRatio,
          resting_rss_mb: Math.round(restingRss / 1048576),
          stages,
          policy,
          policy_share_of_one_record_p50: policyShare,
          dlp,
        },
        null,
        2,
      ),
    );
  } else {
    printDlpTable(dlp);
    console.log('');
    console.log('| Cedar decision | decisions/s | p50 µs | p99 µs |\n|---|---|---|---|');
    for (const p of policy)
      console.log(`| ${p.scenario} | ${p.decisions_per_second} | ${p.p50_us} | ${p.p99_us} |`);
    console.log(
      `\ncached decisions of one record read: ${perRequestMs.toFixed(3)} ms of a ${results[1].latency_ms_p50} ms p50 (${(policyShare * 100).toFixed(2)}%)\n`,
    );
    console.log(
      '| scenario | req/s | p50 ms | p99 ms | non-2xx | server CPU ms/req | event loop busy ms/req | peak RSS MB |\n|---|---|---|---|---|---|---|---|',
    );
    for (const r of results) {
      console.log(
        `| ${r.scenario} | ${r.requests_per_second} | ${r.latency_ms_p50} | ${r.latency_ms_p99} | ${r.non_2xx} | ${r.cpu_ms_per_request} | ${r.loop_busy_ms_per_request} | ${r.peak_rss_mb} |`,
      );
    }
    console.log(`\nRSS at rest before the load: ${Math.round(restingRss / 1048576)} MB`);
    console.log(
      `ratio gateway / bare (one record): ${ratio.toFixed(2)} in req/s, ${cpuRatio.toFixed(2)} in server CPU per request`,
    );
    if (stages) {
      const total = stages.reduce((sum, s) => sum + s.ms_per_request, 0);
      console.log(
        '\n| where one-contact time goes (a separate profiled run) | ms/req | share |\n|---|---|---|',
      );
      for (const s of stages) {
        console.log(
          `| ${s.stage} | ${s.ms_per_request.toFixed(3)} | ${((100 * s.ms_per_request) / total).toFixed(1)}% |`,
        );
      }
    }
  }
} finally {
  await bare.close();
  db.close();
  await gatehouse.close();
  rmSync(dataDir, { recursive: true, force: true });
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
    clearPolicyCaches();
    for (let i = 0; i < 50; i++) authorizeRequest(library, input(n + i)); // warm-up (and the cached entry)
    const samples = new Float64Array(n);
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      authorizeRequest(library, input(i));
      samples[i] = Number(process.hrtime.bigint() - t) / 1000;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    samples.sort();
    const at = (q) => Math.round(samples[Math.min(n - 1, Math.floor(q * n))] * 10) / 10;
    out.push({ scenario, decisions_per_second: Math.round(n / seconds), p50_us: at(0.5), p99_us: at(0.99) });
  }
  clearPolicyCaches();
  return out;
}

/** The same contact read from the Salesforce fake directly: one SOQL query with the connected app's session. */
async function salesforceDirect(id) {
  const { demoConnectedApp, soqlLiteral } = await import('../dist/crm/salesforce/index.js');
  const { SignJWT } = await import('jose');
  const { createPrivateKey } = await import('node:crypto');
  const pem = await openLocalSecretStore(dataDir).get(config.crm.salesforce.privateKeySecret);
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

async function accessToken() {
  const subjectToken = await mintDevIdToken({
    config,
    secrets: openLocalSecretStore(dataDir),
    user: 'alice',
    issuer: `${gatehouse.url}/idp`,
    // The exchange is bound to the app asking: an ID token issued to its own IdP client.
    audience: 'call-notes',
  });
  const response = await fetch(`${gatehouse.url}/oauth/token`, {
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
