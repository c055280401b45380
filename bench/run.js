#!/usr/bin/env node
// Measures what governance costs per request: a bare endpoint against governed gateway reads, over
// loopback with autocannon, on a fresh demo data dir. Usage: npm run bench [-- --seconds N --json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { loadConfig } from '../dist/config/index.js';
import { mintDevIdToken } from '../dist/devidp/index.js';
import { openLocalSecretStore } from '../dist/secrets/index.js';
import { startGatehouse } from '../dist/server/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: npm run bench [-- --seconds 10 --connections 32 --json]');
  process.exit(0);
}
const seconds = Number(values.seconds);
const connections = Number(values.connections);

const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const config = loadConfig({ env: {}, overrides: { dataDir, demo: true, logLevel: 'warn', 'server.port': 0 } });
const gatehouse = await startGatehouse(config, {
  onSeedProgress: (done, total) => process.stderr.write(`\rseeding ${done}/${total}`),
});
process.stderr.write('\n');
try {
  const idToken = await mintDevIdToken({
    config,
    secrets: openLocalSecretStore(dataDir),
    user: 'alice',
    issuer: `${gatehouse.url}/idp`,
  });
  const exchanged = await fetch(`${gatehouse.url}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: idToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: 'call-notes',
      scope: 'read:account.basic read:contact.basic read:contact.reach',
    }),
  });
  const { access_token: token } = await exchanged.json();
  const headers = { authorization: `Bearer ${token}` };
  const list = await (await fetch(`${gatehouse.url}/crm/v1/contacts?limit=1`, { headers })).json();
  const id = list.records[0].id;

  const scenarios = [
    { name: 'bare /healthz (no governance)', path: '/healthz', headers: {} },
    { name: 'GET one contact (governed, masked, audited)', path: `/crm/v1/contacts/${id}`, headers },
    { name: 'GET 50 contacts (governed, masked, audited)', path: '/crm/v1/contacts?limit=50', headers },
  ];
  const results = [];
  for (const scenario of scenarios) {
    process.stderr.write(`running ${scenario.name} for ${seconds}s with ${connections} connections\n`);
    const result = await autocannon({
      url: gatehouse.url + scenario.path,
      headers: scenario.headers,
      connections,
      duration: seconds,
    });
    results.push({
      scenario: scenario.name,
      requests_per_second: Math.round(result.requests.average),
      latency_ms_p50: result.latency.p50,
      latency_ms_p99: result.latency.p99,
      errors: result.errors + result.non2xx,
    });
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  else {
    console.log('| scenario | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|');
    for (const r of results) {
      console.log(`| ${r.scenario} | ${r.requests_per_second} | ${r.latency_ms_p50} | ${r.latency_ms_p99} | ${r.errors} |`);
    }
  }
} finally {
  await gatehouse.close();
  rmSync(dataDir, { recursive: true, force: true });
}
