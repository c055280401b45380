import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import * as tlog from './support/tlog.js';

let demo: Demo;
let alice: string;
let carol: string;
let key: string;
let purge: {
  documents: number;
  events: number;
  left: { documents: number; events: number };
  event_index: number;
};

interface Row {
  index: number;
  leaf_hash: string;
  event: Record<string, unknown>;
  tombstone?: { state: string; run: string };
}

/** The server's retention, for the CLI too: pii is kept 0 days, so it is past retention at once. */
const retention = { days: { pii: 0 }, purgeIntervalMs: 0 };
let configFile: string;
const cli = (...args: string[]) =>
  gatehouseAsync([...args, '--data-dir', demo.dataDir, '--config', configFile]);

async function events(): Promise<{ records: Row[]; tombstones?: Row[] }> {
  const answer = await demo.get('/audit/v1/events?limit=1000', carol);
  expect(answer.status).toBe(200);
  return (await answer.json()) as { records: Row[]; tombstones?: Row[] };
}

beforeAll(async () => {
  // pii is kept for 0 days: whatever holds it is past retention at the next purge.
  demo = await startDemo({ config: { retention } });
  configFile = join(demo.dataDir, 'retention.json');
  writeFileSync(configFile, JSON.stringify({ retention }));
  alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic read:contact.reach app:store');
  carol = await demo.accessToken('carol', 'console', 'audit:read');
  key = (await cli('audit', 'public-key')).stdout.trim();
  expect((await demo.get('/crm/v1/contacts?limit=3&fields=first_name,email', alice)).status).toBe(200);
  const tag = (classes: string[]) => ({ json: { data: { text: 'follow up' }, data_classes: classes } });
  expect((await demo.send('PUT', '/apps/v1/store/calls/pii', alice, tag(['internal', 'pii']))).status).toBe(
    201,
  );
  expect((await demo.send('PUT', '/apps/v1/store/calls/plain', alice, tag(['internal']))).status).toBe(201);
  const result = await cli('compliance', 'purge', '--now', '--json');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  purge = JSON.parse(result.stdout) as typeof purge;
});

afterAll(async () => {
  await demo?.stop();
});

describe('retention purge with proof', () => {
  it('deletes the documents and prunes the event bodies past retention, leaving nothing behind', async () => {
    expect(purge.documents).toBe(1);
    expect(purge.events).toBeGreaterThan(0);
    expect(purge.left).toEqual({ documents: 0, events: 0 });
    expect((await demo.get('/apps/v1/store/calls/pii', alice)).status).toBe(404);
    expect((await demo.get('/apps/v1/store/calls/plain', alice)).status).toBe(200);
  });

  it('answers a pruned event as a tombstone that is still proven by its leaf hash', async () => {
    const { records: rows, tombstones = [] } = await events();
    const pruned = tombstones.filter((r) => r.tombstone?.state === 'pruned');
    // Every record still hashes to its leaf hash; only tombstones do not.
    for (const row of rows)
      expect(tlog.leafHash(Buffer.from(tlog.jcs(row.event))).toString('hex')).toBe(row.leaf_hash);
    expect(pruned.length).toBe(purge.events);
    expect(pruned.every((r) => r.event.action === 'pruned' && r.event.actor_id === 'pruned')).toBe(true);
    expect(JSON.stringify(pruned)).not.toContain('alice@example.com');
    const note = await (await demo.get('/audit/v1/checkpoint', carol)).text();
    const checkpoint = tlog.openCheckpoint(note, key);
    for (const row of pruned) {
      const proof = (await (
        await demo.get(`/audit/v1/proof/inclusion?index=${row.index}&size=${checkpoint.size}`, carol)
      ).json()) as { hashes: string[] };
      const leaf = Buffer.from(row.leaf_hash, 'hex');
      const hashes = proof.hashes.map((h) => Buffer.from(h, 'hex'));
      expect(tlog.verifyInclusion(row.index, checkpoint.size, leaf, hashes, checkpoint.root)).toBe(true);
    }
    const purgeEvent = rows.find((r) => r.index === purge.event_index);
    expect(purgeEvent?.event).toMatchObject({ action: 'compliance.purge', actor_id: 'system' });
    expect(purgeEvent?.event.reason).toMatch(/manifest sha256:[0-9a-f]{64}/);
  });

  it('keeps the log verifying: audit verify on the store, and an export verified offline', async () => {
    const verified = await cli('audit', 'verify');
    expect(verified.stdout).toContain('audit log intact');
    expect(verified.code).toBe(0);
    const file = join(demo.dataDir, 'export.jsonl');
    expect((await cli('audit', 'export', '--out', file)).code).toBe(0);
    const offline = await gatehouseAsync(['audit', 'verify', '--file', file, '--public-key', key]);
    expect(offline.stdout).toContain('audit log intact');
    expect(offline.code).toBe(0);
  });

  it('writes a purge report that verifies offline with the public key alone', async () => {
    const file = join(demo.dataDir, 'purge-report.json');
    const written = await cli('compliance', 'purge-report', '--since', '1d', '--out', file);
    expect(written.code).toBe(0);
    const report = JSON.parse(readFileSync(file, 'utf8')) as { summary: { counts: Record<string, unknown> } };
    expect(report.summary.counts).toMatchObject({ pii: { documents: 1 } });
    const verified = await gatehouseAsync(['compliance', 'verify-report', file, '--public-key', key]);
    expect(verified.stdout).toContain('report verifies');
    expect(verified.stdout).toContain('left past retention after the newest run: 0 documents, 0 events');
    expect(verified.code).toBe(0);
  });

  it('rejects a report whose counts were inflated after it was written', async () => {
    const file = join(demo.dataDir, 'purge-report.json');
    const report = JSON.parse(readFileSync(file, 'utf8')) as {
      summary: { counts: Record<string, { documents: number }> };
    };
    report.summary.counts.pii.documents += 5;
    const forged = join(demo.dataDir, 'forged-counts.json');
    writeFileSync(forged, JSON.stringify(report));
    const verified = await gatehouseAsync(['compliance', 'verify-report', forged, '--public-key', key]);
    expect(verified.stdout).toContain('does NOT verify');
    expect(verified.code).toBe(1);
  });

  it('rejects a report whose manifest was edited (it no longer matches the digest its signed event names)', async () => {
    const file = join(demo.dataDir, 'purge-report.json');
    const report = JSON.parse(readFileSync(file, 'utf8')) as {
      runs: { manifest: { documents: unknown[] } }[];
    };
    report.runs[0].manifest.documents = [];
    const forged = join(demo.dataDir, 'forged-manifest.json');
    writeFileSync(forged, JSON.stringify(report));
    const verified = await gatehouseAsync(['compliance', 'verify-report', forged, '--public-key', key]);
    expect(verified.stdout).toContain('is not the one its event commits to');
    expect(verified.code).toBe(1);
  });

  it('rejects a report that claims a pruned leaf the signed tree does not hold', async () => {
    const file = join(demo.dataDir, 'purge-report.json');
    const report = JSON.parse(readFileSync(file, 'utf8')) as { leaves: { leaf_hash: string }[] };
    report.leaves[0].leaf_hash = '00'.repeat(32);
    const forged = join(demo.dataDir, 'forged-leaf.json');
    writeFileSync(forged, JSON.stringify(report));
    const verified = await gatehouseAsync(['compliance', 'verify-report', forged, '--public-key', key]);
    expect(verified.code).toBe(1);
  });
});

describe('the compliance and dsr commands', () => {
  it.each([
    ['compliance', 'purge'],
    ['compliance', 'purge-report'],
    ['compliance', 'verify-report'],
    ['dsr', 'create'],
    ['dsr', 'list'],
    ['dsr', 'show'],
  ])('%s %s has --help, --json and --data-dir', async (...command) => {
    const result = await gatehouseAsync([...command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--json');
    expect(result.stdout).toContain('--data-dir');
  });

  it('refuses a purge without --now in one line with a non-zero exit', async () => {
    const result = await gatehouseAsync(['compliance', 'purge', '--data-dir', demo.dataDir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
