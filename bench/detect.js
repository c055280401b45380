// Detection to containment, in real time on a real server (embedded, SQLite): each of `n` users pages
// through contacts until the bulk-export guard refuses them (403, its `bulk_export` event appended
// before the answer), then reads on, back to back, until a request is refused because the playbook
// revoked their tokens (401 TOKEN_REVOKED). Two figures per user: from the refused read's answer to
// the first refused request, as a caller sees it; and the detector's own, from the event's append to
// the containment being applied (`gatehouse_detect_last_detection_ms` on /metrics).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../dist/config/index.js';
import { mintDevIdToken } from '../dist/devidp/index.js';
import { nodeSecrets } from './secrets.js';
import { startGatehouse } from '../dist/server/index.js';
import { startProfile } from './stages.js';

const contactScopes = 'read:account.basic read:contact.basic read:contact.reach';

export async function detectBench(values) {
  // The first few users warm the JIT and the caches up; they are not counted.
  const warmup = 3;
  const n = Number(values.users) + warmup;
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-detect-'));
  const users = Object.fromEntries(
    Array.from({ length: n }, (_, i) => {
      const name = `bench${String(i).padStart(3, '0')}`;
      return [name, { email: `${name}@example.com`, name, role: 'sales_rep', territory: 'EMEA' }];
    }),
  );
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      demo: true,
      logLevel: 'error',
      'server.port': 0,
      // The metrics listener of its own answers without a token: the detector's figure is read there.
      'server.metricsPort': 0,
      'detect.enabled': true,
      // The polling after containment is a stream of 401s from one loopback network: not a probe here.
      'detect.rules.denial_burst.enabled': false,
      demoUsers: users,
      // Every user works around the clock: only the export under test is an anomaly.
      'detect.workingHours.default': {
        days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
        start: '00:00',
        end: '00:00',
      },
      'limits.perUser': { burst: 100000, ratePerSecond: 10000 },
      'limits.perApp': { burst: 1000000, ratePerSecond: 100000 },
      'limits.global': { burst: 1000000, ratePerSecond: 100000 },
      'limits.bulkExport': { perUserRecords: 40, minimum: 40 },
    },
  });
  const gatehouse = await startGatehouse(config, {
    onSeedProgress: (done, total) => process.stderr.write(`\rseeding ${done}/${total}`),
  });
  process.stderr.write('\n');
  const secrets = nodeSecrets(config);
  const stopProfile = values.profile ? await startProfile() : undefined;
  const seen = [];
  const detector = [];
  try {
    for (const user of Object.keys(users)) {
      const token = await accessToken(gatehouse.url, config, secrets, user);
      const headers = { authorization: `Bearer ${token}` };
      const get = async (path) => {
        const response = await fetch(`${gatehouse.url}${path}`, { headers });
        const body = await response.json();
        return { status: response.status, body };
      };
      let cursor = '';
      let refusedAt;
      for (let page = 0; page < 20 && refusedAt === undefined; page++) {
        const answer = await get(`/crm/v1/contacts?limit=25${cursor}`);
        if (answer.status === 403 && answer.body.code === 'BULK_EXPORT_BLOCKED')
          refusedAt = performance.now();
        else if (answer.status !== 200) throw new Error(`${user}: page ${page} answered ${answer.status}`);
        else cursor = `&cursor=${encodeURIComponent(answer.body.next_cursor)}`;
      }
      if (refusedAt === undefined) throw new Error(`${user}: the bulk-export guard never refused`);
      for (;;) {
        const answer = await get('/crm/v1/accounts?limit=1');
        if (answer.status === 401) break;
        if (performance.now() - refusedAt > 10_000) throw new Error(`${user}: not contained within 10 s`);
      }
      const callerMs = performance.now() - refusedAt;
      await gatehouse.detectionIdle();
      const metrics = await (await fetch(gatehouse.metricsUrl)).text();
      const own = /^gatehouse_detect_last_detection_ms (\S+)$/m.exec(metrics);
      if (Number(user.slice(5)) >= warmup) {
        seen.push(callerMs);
        if (own) detector.push(Number(own[1]));
      }
      process.stderr.write(`\rdetection bench: ${seen.length}/${n - warmup} users contained`);
    }
    process.stderr.write('\n');
  } finally {
    const profile = stopProfile ? await stopProfile() : undefined;
    await gatehouse.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (profile) printHotFunctions(profile);
  }
  return [
    { measure: "caller: refused read's answer → first request refused", ...percentiles(seen) },
    { measure: 'detector: event appended → containment applied', ...percentiles(detector) },
  ];
}

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] * 10) / 10;
  return { n: sorted.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) };
}

/** The functions where the profiled run spent its time, by self time (a first look at a slow path). */
function printHotFunctions(profile) {
  const self = new Map();
  const { nodes, samples, timeDeltas } = profile;
  const byId = new Map(nodes.map((node) => [node.id, node]));
  samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (timeDeltas[i] ?? 0) / 1000);
  });
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 15);
  console.error('\nself time (ms) of the profiled detection run:');
  for (const [name, ms] of top) console.error(`${ms.toFixed(1).padStart(9)}  ${name}`);
}

async function accessToken(url, config, secrets, user) {
  const subjectToken = await mintDevIdToken({
    config,
    secrets,
    user,
    issuer: `${url}/idp`,
    audience: 'call-notes',
  });
  const response = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: 'call-notes',
      scope: contactScopes,
    }),
  });
  const body = await response.json();
  if (!body.access_token) throw new Error(`token exchange for ${user}: ${JSON.stringify(body)}`);
  return body.access_token;
}
