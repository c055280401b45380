import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import * as tlog from './support/tlog.js';

let demo: Demo;
let carol: string;

beforeAll(async () => {
  demo = await startDemo({ keepDataDir: true });
  carol = await demo.accessToken('carol', 'console', 'audit:read');
  const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
  for (let i = 0; i < 10; i++) await demo.get('/crm/v1/contacts?limit=5', alice);
});

afterAll(async () => {
  await demo?.stop();
  rmSync(demo.dataDir, { recursive: true, force: true });
});

describe('the audit endpoints, checked by the reference verifier', () => {
  it('proves signature, leaf hashes, inclusion and consistency over HTTP as RFC 9162 reads them', async () => {
    const key = gatehouse(['audit', 'public-key', '--data-dir', demo.dataDir]).stdout.trim();
    const json = async (path: string) =>
      (await demo.get(path, carol)).json() as Promise<Record<string, unknown>>;
    const hashes = (answer: Record<string, unknown>) =>
      (answer.hashes as string[]).map((h) => Buffer.from(h, 'hex'));
    const first = tlog.openCheckpoint(await (await demo.get('/audit/v1/checkpoint', carol)).text(), key);
    expect(first).toMatchObject({ origin: 'gatehouse/audit', signed: true });
    const { records } = (await json('/audit/v1/events?limit=5')) as {
      records: { index: number; leaf_hash: string; event: unknown }[];
    };
    expect(records.length).toBeGreaterThan(0);
    for (const row of records.filter(({ index }) => index < first.size)) {
      const leaf = tlog.leafHash(Buffer.from(tlog.jcs(row.event)));
      expect(leaf.toString('hex')).toBe(row.leaf_hash);
      const proof = hashes(await json(`/audit/v1/proof/inclusion?index=${row.index}&size=${first.size}`));
      expect(tlog.verifyInclusion(row.index, first.size, leaf, proof, first.root)).toBe(true);
    }
    const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    await demo.get('/crm/v1/contacts?limit=5', alice);
    let later = first;
    for (let i = 0; i < 100 && later.size <= first.size; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      later = tlog.openCheckpoint(await (await demo.get('/audit/v1/checkpoint', carol)).text(), key);
    }
    expect(later.signed).toBe(true);
    expect(later.size).toBeGreaterThan(first.size);
    const proof = hashes(await json(`/audit/v1/proof/consistency?from=${first.size}&to=${later.size}`));
    expect(tlog.verifyConsistency(first.size, later.size, first.root, later.root, proof)).toBe(true);
  });

  it('serves the checkpoint as a signed note in text/plain', async () => {
    const response = await demo.get('/audit/v1/checkpoint', carol);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const [origin, size, root, timestamp, blank, signature] = (await response.text()).split('\n');
    expect(origin).toBe('gatehouse/audit');
    expect(Number(size)).toBeGreaterThan(10);
    expect(Buffer.from(root as string, 'base64')).toHaveLength(32);
    // C2SP extension line: when the log signed it, in POSIX seconds.
    expect(timestamp).toMatch(/^timestamp [1-9][0-9]*$/);
    expect(blank).toBe('');
    expect(signature).toMatch(/^— gatehouse\/audit [A-Za-z0-9+/]+=*$/);
  });

  it('refuses proofs for sizes beyond the log and malformed numbers with 422', async () => {
    for (const query of ['index=0&size=99999999', 'index=-1&size=2', 'index=abc&size=2', 'index=5&size=3']) {
      const response = await demo.get(`/audit/v1/proof/inclusion?${query}`, carol);
      expect(response.status, query).toBe(422);
    }
    expect((await demo.get('/audit/v1/proof/consistency?from=9&to=3', carol)).status).toBe(422);
  });

  it('exports the log and verifies the export offline with the public key', async () => {
    const out = join(demo.dataDir, 'export.jsonl');
    const exported = gatehouse(['audit', 'export', '--out', out, '--json', '--data-dir', demo.dataDir]);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout).events).toBeGreaterThan(10);
    const key = gatehouse(['audit', 'public-key', '--data-dir', demo.dataDir]).stdout.trim();
    const verified = gatehouse(['audit', 'verify', '--file', out, '--public-key', key, '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
    const wrongKey = key.replace(/.{4}$/, 'AAA=');
    expect(gatehouse(['audit', 'verify', '--file', out, '--public-key', wrongKey]).code).not.toBe(0);
  });
});
