import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

// The independent verifier the audit endpoints must satisfy (a third party's view of the log).
const run = promisify(execFile);
const tlogCheck = fileURLToPath(new URL('../../shared/tools/tlog-check.mjs', import.meta.url));

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

describe('the audit endpoints, checked by an independent verifier', () => {
  it.runIf(existsSync(tlogCheck))('satisfies tlog-check: signature, inclusion and consistency', async () => {
    const key = gatehouse(['audit', 'public-key', '--data-dir', demo.dataDir]).stdout.trim();
    // Asynchronous: the verifier talks to this process's server. execFile rejects on a non-zero exit.
    const { stdout } = await run(process.execPath, [tlogCheck, demo.url, carol, key]);
    expect(stdout).toContain('ok   checkpoint signature');
    expect(stdout).toMatch(/ok {3}inclusion of event 0/);
    expect(stdout).toMatch(/ok {3}consistency/);
    expect(stdout).not.toContain('FAIL');
  });

  it('serves the checkpoint as a signed note in text/plain', async () => {
    const response = await demo.get('/audit/v1/checkpoint', carol);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const [origin, size, root, blank, signature] = (await response.text()).split('\n');
    expect(origin).toBe('gatehouse/audit');
    expect(Number(size)).toBeGreaterThan(10);
    expect(Buffer.from(root as string, 'base64')).toHaveLength(32);
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
