// Scale-out: the gateway on PostgreSQL and Redis with one node, then two (`gatehouse serve` processes
// on loopback, one database, one Redis, one shared data dir), each loaded by wrk (autocannon when wrk
// is not installed) reading one contact through the full pipeline, with the nodes' CPU ms per request
// and peak RSS, and the CPU of the PostgreSQL backends serving them; then the audit sequencer's integration
// rate on a backlog, with the CPU it took.
// `--soak N` also keeps one node under load for N seconds, sampling its RSS every 5 s, and reports
// start, peak, end and the slope (MB per minute) over the whole run and over its second half.
// Usage: npm run bench -- --backend postgres [--seconds 10 --connections 32 --soak 600 --json]
// Needs `npm run build`, a PostgreSQL admin URL and a Redis URL: GATEHOUSE_BENCH_DATABASE_URL and
// GATEHOUSE_BENCH_REDIS_URL, or the test ones (eval "$(.ci/services.sh start)" sets those).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { canonicalJson } from '../dist/audit/index.js';
import { loadConfig } from '../dist/config/index.js';
import { mintDevIdToken } from '../dist/devidp/index.js';
import { cpuMs, drive, hasWrk, rssMb, slopePerMinute } from './load.js';
import { withNodeSecrets } from './secrets.js';

const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
const benchConfig = fileURLToPath(new URL('./gatehouse.bench.yaml', import.meta.url));
/** Events queued at once for the sequencer's integration rate. */
const backlog = 20_000;

export async function scaleBench({ seconds, connections, json, soak }) {
  const adminUrl = process.env.GATEHOUSE_BENCH_DATABASE_URL || process.env.GATEHOUSE_TEST_DATABASE_URL;
  const redisUrl = process.env.GATEHOUSE_BENCH_REDIS_URL || process.env.GATEHOUSE_TEST_REDIS_URL;
  if (!adminUrl || !redisUrl) {
    process.stderr.write(
      'bench: --backend postgres needs GATEHOUSE_BENCH_DATABASE_URL and GATEHOUSE_BENCH_REDIS_URL (or run eval "$(.ci/services.sh start)" first)\n',
    );
    return 2;
  }
  const database = `gatehouse_bench_${randomBytes(4).toString('hex')}`;
  await admin(adminUrl, (client) =>
    client.query(`create database ${database} template template0 lc_collate 'C' lc_ctype 'C'`),
  );
  const databaseUrl = withDatabase(adminUrl, database);
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-scale-'));
  const configFile = join(dataDir, 'gatehouse.yaml');
  writeFileSync(
    configFile,
    stringify({
      ...parse(readFileSync(benchConfig, 'utf8')),
      redis: { keyPrefix: `gatehouse-bench:${randomBytes(4).toString('hex')}:` },
    }),
  );
  const ports = [await freePort(), await freePort()];
  const publicUrl = `http://127.0.0.1:${ports[0]}`;
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GATEHOUSE_DATABASE_URL: databaseUrl,
    GATEHOUSE_REDIS_URL: redisUrl,
    GATEHOUSE_PUBLIC_URL: publicUrl,
    GATEHOUSE_CONFIG: configFile,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_LOG_LEVEL: 'warn',
  };
  const db = new pg.Client({ connectionString: databaseUrl });
  const nodes = [];
  const loader = (await hasWrk()) ? 'wrk' : 'autocannon';
  if (loader === 'autocannon') {
    process.stderr.write(
      'bench: wrk is not installed; autocannon drives the load from this process, and it costs a core of its own\n',
    );
  }
  const options = { loader, seconds: Number(seconds), connections: Number(connections) };
  try {
    process.stderr.write('starting node 1 (migrates and seeds)\n');
    nodes.push(await startNode(ports[0], env));
    await db.connect();
    const token = await accessToken(dataDir, databaseUrl, publicUrl);
    const headers = { authorization: `Bearer ${token}` };
    const list = await (await fetch(`${publicUrl}/crm/v1/contacts?limit=1`, { headers })).json();
    const path = `/crm/v1/contacts/${list.records[0].id}`;

    const results = [];
    results.push(await load('1 node', nodes, path, headers, options, db, database));
    const memory =
      Number(soak) > 0
        ? await soakRun(nodes[0], path, headers, { ...options, seconds: Number(soak) })
        : undefined;
    process.stderr.write('starting node 2\n');
    nodes.push(await startNode(ports[1], env));
    results.push(await load('2 nodes', nodes, path, headers, options, db, database));
    const sequencer = await integrationRate(db, nodes, database);

    const machine = { cpu_cores: cpus().length, load_average_1m_at_end: Number(loadavg()[0].toFixed(2)) };
    if (json) console.log(JSON.stringify({ loader, results, sequencer, memory, machine }, null, 2));
    else {
      console.log(
        `load: ${loader}, ${options.connections} connections, ${options.seconds} s per run\n\n| nodes (PostgreSQL + Redis) | req/s | p50 ms | p99 ms | non-2xx | node CPU ms/req | PostgreSQL CPU ms/req | peak RSS MB per node | audit events integrated/s |`,
      );
      console.log('|---|---|---|---|---|---|---|---|---|');
      for (const r of results) {
        console.log(
          `| ${r.scenario} | ${r.requests_per_second} | ${r.latency_ms_p50} | ${r.latency_ms_p99} | ${r.non_2xx} | ${r.cpu_ms_per_request} | ${r.postgres_cpu_ms_per_request} | ${r.peak_rss_mb.join(', ')} | ${r.audit_events_per_second} |`,
        );
      }
      if (memory) {
        console.log(
          `\nsoak, 1 node, ${memory.seconds} s under load (${memory.requests_per_second} req/s, ${memory.non_2xx} non-2xx): RSS ${memory.start_mb} MB at the start, ${memory.peak_mb} MB peak, ${memory.end_mb} MB at the end; slope ${memory.slope_mb_per_minute} MB/min over the run, ${memory.second_half_slope_mb_per_minute} MB/min over its second half`,
        );
      }
      console.log(
        `\naudit sequencer: ${sequencer.events} queued events integrated in ${sequencer.seconds} s, ${sequencer.events_per_second} events/s; CPU per 1,000 events: nodes ${sequencer.node_cpu_ms_per_1000_events} ms, PostgreSQL ${sequencer.postgres_cpu_ms_per_1000_events} ms`,
      );
      console.log(
        `machine: ${machine.cpu_cores} cores, load average ${machine.load_average_1m_at_end} at the end (nodes, PostgreSQL, Redis and autocannon share them)`,
      );
    }
    return 0;
  } finally {
    await Promise.all(nodes.map(stopNode));
    await db.end().catch(() => undefined);
    await admin(adminUrl, (client) => client.query(`drop database if exists ${database} with (force)`));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Load over every node at once (connections spread evenly), the nodes' CPU time and peak RSS, and the
 * audit log's growth meanwhile.
 */
async function load(scenario, nodes, path, headers, options, db, database) {
  process.stderr.write(`${scenario}: ${options.seconds}s, ${options.connections} connections\n`);
  const before = await auditSize(db);
  const cpuBefore = nodes.map((node) => cpuMs(node.child.pid));
  const postgresBefore = postgresCpuMs(database);
  const started = performance.now();
  const result = await drive({ ...options, urls: nodes.map((node) => `${node.url}${path}`), headers });
  const cpu = nodes.reduce((sum, node, i) => sum + cpuMs(node.child.pid) - cpuBefore[i], 0);
  const postgres = postgresCpuMs(database) - postgresBefore;
  // An answer is sent only once its event is in the log, so the log has grown by every answer.
  const integrated = (await auditSize(db)) - before;
  return {
    scenario,
    requests_per_second: Math.round(result.requests / options.seconds),
    latency_ms_p50: result.p50,
    latency_ms_p99: result.p99,
    non_2xx: result.non2xx,
    cpu_ms_per_request: Math.round((cpu / Math.max(1, result.requests)) * 1000) / 1000,
    postgres_cpu_ms_per_request: Math.round((postgres / Math.max(1, result.requests)) * 1000) / 1000,
    peak_rss_mb: nodes.map((node) => rssMb(node.child.pid).peak),
    audit_events_per_second: Math.round(integrated / ((performance.now() - started) / 1000)),
  };
}

/** One node under load for `options.seconds`, its RSS sampled every 5 s: start, peak, end, slopes. */
async function soakRun(node, path, headers, options) {
  process.stderr.write(`soak: 1 node, ${options.seconds}s under load, RSS every 5 s\n`);
  const samples = [];
  const started = performance.now();
  const sample = () => samples.push([(performance.now() - started) / 1000, rssMb(node.child.pid).rss]);
  sample();
  const timer = setInterval(sample, 5000);
  try {
    const result = await drive({ ...options, urls: [`${node.url}${path}`], headers });
    sample();
    const rss = samples.map(([, mb]) => mb);
    const secondHalf = samples.filter(([at]) => at >= options.seconds / 2);
    return {
      seconds: options.seconds,
      requests_per_second: Math.round(result.requests / options.seconds),
      non_2xx: result.non2xx,
      samples: samples.length,
      start_mb: rss[0],
      peak_mb: Math.max(...rss, rssMb(node.child.pid).peak),
      end_mb: rss.at(-1),
      slope_mb_per_minute: Math.round(slopePerMinute(samples) * 100) / 100,
      second_half_slope_mb_per_minute: Math.round(slopePerMinute(secondHalf) * 100) / 100,
    };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Queues `backlog` events at once, as nodes do (audit_queue, then a notification), and times the
 * sequencer integrating them into the tree: its rate when it has a batch to take on every turn.
 */
async function integrationRate(db, nodes, database) {
  process.stderr.write(`audit sequencer: integrating a backlog of ${backlog} events\n`);
  const now = new Date().toISOString();
  const rows = Array.from({ length: backlog }, (_, i) => ({
    id: `bench:${String(i).padStart(12, '0')}`,
    event: canonicalJson({
      timestamp: now,
      actor_id: 'bench',
      actor_role: 'system',
      app_id: 'bench',
      action: 'bench.backlog',
      resource_type: 'bench',
      resource_id: String(i),
      scope: '',
      request_id: `bench-${i}`,
      trace_id: '',
      outcome: 'allow',
      reason: 'sequencer integration rate',
    }),
  }));
  await db.query('begin');
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    await db.query(
      'insert into audit_queue (id, event, queued_at) select id, event, $3 from unnest($1::text[], $2::text[]) as q(id, event)',
      [chunk.map((r) => r.id), chunk.map((r) => r.event), now],
    );
  }
  await db.query(`select pg_notify('gatehouse_audit', 'queued')`);
  const cpuBefore = nodes.map((node) => cpuMs(node.child.pid));
  const postgresBefore = postgresCpuMs(database);
  const started = performance.now();
  await db.query('commit');
  for (;;) {
    const { rows: left } = await db.query(
      `select count(*)::int as n from audit_queue where id like 'bench:%'`,
    );
    if (left[0].n === 0) break;
    if (performance.now() - started > 300_000)
      throw new Error('the sequencer did not drain the backlog in 5 minutes');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = nodes.reduce((sum, node, i) => sum + cpuMs(node.child.pid) - cpuBefore[i], 0);
  return {
    events: backlog,
    seconds: Number(seconds.toFixed(2)),
    events_per_second: Math.round(backlog / seconds),
    node_cpu_ms_per_1000_events: Math.round((cpu / backlog) * 1000),
    postgres_cpu_ms_per_1000_events: Math.round(
      ((postgresCpuMs(database) - postgresBefore) / backlog) * 1000,
    ),
  };
}

/**
 * CPU ms of the PostgreSQL backends serving `database` (a server on this machine: /proc names each
 * backend by its database), so the figures say what the database costs per request, which a machine
 * shared with other work hides in req/s. 0 when the server runs elsewhere.
 */
function postgresCpuMs(database) {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${database} `)) total += cpuMs(pid);
    } catch {
      // The process ended while being read.
    }
  }
  return total;
}

async function auditSize(db) {
  const { rows } = await db.query('select count(*)::int as n from audit_events');
  return rows[0].n;
}

async function startNode(port, env) {
  const child = spawn(process.execPath, [bin, 'serve', '--demo', '--port', String(port)], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const node = { url: `http://127.0.0.1:${port}`, child };
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`node on port ${port} exited: ${stderr}`);
    const status = await fetch(`${node.url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return node;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill('SIGTERM');
  throw new Error(`node on port ${port} not ready after 3 minutes: ${stderr}`);
}

async function stopNode(node) {
  if (node.child.exitCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill('SIGTERM');
  await exited;
}

async function accessToken(dataDir, databaseUrl, publicUrl) {
  const config = loadConfig({ env: {}, overrides: { dataDir, 'database.url': databaseUrl } });
  const subjectToken = await withNodeSecrets(config, (secrets) =>
    mintDevIdToken({
      config,
      secrets,
      user: 'alice',
      issuer: `${publicUrl}/idp`,
      // The exchange is bound to the app asking: an ID token issued to its own IdP client.
      audience: 'call-notes',
    }),
  );
  const response = await fetch(`${publicUrl}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: 'call-notes',
      scope: 'read:account.basic read:contact.basic read:contact.reach',
    }),
  });
  const body = await response.json();
  if (!body.access_token) throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
  return body.access_token;
}

async function admin(url, work) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
