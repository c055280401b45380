import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse, gatehouseServer } from './support/cli.js';
import { openTestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import * as tlog from './support/tlog.js';

// A real witness process on loopback (`gatehouse witness serve`), a real demo server cosigned by it,
// and an operator who holds the log's signing key and rewrites the tail of the log.
const witnessName = 'witness.test/w1';
let dataDir: string;
let witnessDir: string;
let witness: { child: ChildProcess; stderr: () => string };
let witnessUrl: string;
let witnessKey: string;
let logKey: string;
let demo: Demo | undefined;

const witnessConfig = () => ({
  'audit.witnesses': [{ name: witnessName, url: witnessUrl, vkey: witnessKey }],
});

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-witness-'));
  witnessDir = mkdtempSync(join(tmpdir(), 'witness-'));
  const keyFile = join(witnessDir, 'witness.key');
  const init = gatehouse(['witness', 'init', '--key-file', keyFile, '--name', witnessName, '--json']);
  expect(init.code, init.stderr).toBe(0);
  witnessKey = JSON.parse(init.stdout).vkey;
  logKey = gatehouse(['audit', 'public-key', '--data-dir', dataDir]).stdout.trim();
  const started = await gatehouseServer([
    'witness',
    'serve',
    '--key-file',
    keyFile,
    '--port',
    '0',
    '--log',
    logKey,
  ]);
  witness = started;
  witnessUrl = /listening on (\S+)$/.exec(started.firstLine)?.[1] ?? '';
  expect(witnessUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

afterAll(async () => {
  await demo?.stop();
  witness?.child.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(witnessDir, { recursive: true, force: true });
});

async function traffic(requests: number): Promise<void> {
  const alice = await (demo as Demo).accessToken('alice', 'call-notes', 'read:contact.basic');
  for (let i = 0; i < requests; i++) await (demo as Demo).get('/crm/v1/contacts?limit=2', alice);
}

describe('a witnessed audit log', () => {
  let cosignedSize = 0;

  it('serves the scheduled checkpoint, timestamped and cosigned, without signing one per GET', async () => {
    // A long interval: only the first GET (no checkpoint yet) and shutdown sign one.
    demo = await startDemo({
      dataDir,
      keepDataDir: true,
      config: { ...witnessConfig(), 'audit.checkpointInterval': 600_000 },
    });
    await traffic(5);
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const first = await (await demo.get('/audit/v1/checkpoint', carol)).text();
    const second = await (await demo.get('/audit/v1/checkpoint', carol)).text();
    expect(second).toBe(first);
    const [, , , timestamp] = first.split('\n');
    expect(timestamp).toMatch(/^timestamp \d+$/);
    expect(Math.abs(Number(timestamp?.slice(10)) - Date.now() / 1000)).toBeLessThan(3600);
    expect(tlog.openCheckpoint(first, logKey)).toMatchObject({ signed: true });
    expect(first).toMatch(new RegExp(`\\n— ${witnessName} [A-Za-z0-9+/]+=*\\n$`));
    await traffic(10);
    await demo.stop();
    demo = undefined;
    const verified = gatehouse([
      'audit',
      'verify',
      '--data-dir',
      dataDir,
      '--witness',
      witnessKey,
      '--quorum',
      '1',
    ]);
    expect(verified.stdout + verified.stderr).toMatch(/audit log intact/);
    expect(verified.code).toBe(0);
    cosignedSize = await newestCheckpointSize();
    // An export carries each checkpoint with its cosignatures: offline, the same quorum holds.
    expect(verifyExport('witnessed.jsonl')).toMatchObject({ ok: true, witnessed: { size: cosignedSize } });
  });

  it('catches a tail deleted with its checkpoints and re-signed with the log key: no witness cosigns it', async () => {
    expect(cosignedSize).toBeGreaterThan(10);
    // The operator: delete the last 5 events, their checkpoints, cosignatures and subtree hashes.
    const cut = cosignedSize - 5;
    await truncateLog(cut);
    // Not signed again yet: what is left verifies, even with the quorum, but the witness, asked, knows more.
    const offline = gatehouse(['audit', 'verify', '--data-dir', dataDir, '--witness', witnessKey]);
    expect(offline.code).toBe(0);
    const configFile = join(witnessDir, 'gatehouse.json');
    writeFileSync(configFile, JSON.stringify({ audit: { witnesses: witnessConfig()['audit.witnesses'] } }));
    const asked = gatehouse(['audit', 'verify', '--data-dir', dataDir, '--config', configFile, '--json']);
    expect(asked.code).toBe(1);
    expect(JSON.parse(asked.stdout)).toMatchObject({ ok: false, code: 'TRUNCATED' });
    expect(JSON.parse(asked.stdout).problem).toContain(`cosigned ${cosignedSize} events`);
    // ... then run Gatehouse again (it holds the log key): it signs a new, larger tree over the rewritten tail.
    demo = await startDemo({
      dataDir,
      keepDataDir: true,
      config: { ...witnessConfig(), 'audit.checkpointInterval': 200 },
    });
    await traffic(12);
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    let resigned: { size: number; note: string } | undefined;
    for (let i = 0; i < 100 && !(resigned && resigned.size > cosignedSize); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      resigned = await newestCheckpoint();
    }
    expect(resigned?.size).toBeGreaterThan(cosignedSize);
    // The witness refuses the rewritten history: the log's own consistency proof does not verify (422).
    const proof = (await (
      await demo.get(`/audit/v1/proof/consistency?from=${cosignedSize}&to=${resigned?.size}`, carol)
    ).json()) as { hashes: string[] };
    const body = `old ${cosignedSize}\n${proof.hashes.map((h) => `${Buffer.from(h, 'hex').toString('base64')}\n`).join('')}\n${resigned?.note}`;
    const refused = await fetch(`${witnessUrl}/add-checkpoint`, { method: 'POST', body });
    expect(refused.status).toBe(422);
    // An old size below what it cosigned: 409 naming the size it did cosign.
    const stale = await fetch(`${witnessUrl}/add-checkpoint`, {
      method: 'POST',
      body: `old ${cut}\n\n${resigned?.note}`,
    });
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe('text/x.tlog.size');
    expect(await stale.text()).toBe(`${cosignedSize}\n`);
    // The published checkpoint stays the last witnessed one.
    const published = await (await demo.get('/audit/v1/checkpoint', carol)).text();
    expect(tlog.openCheckpoint(published, logKey).size).toBeLessThanOrEqual(cut);
    await demo.stop();
    demo = undefined;
    // Signatures and hashes all check out with the log key alone...
    expect(gatehouse(['audit', 'verify', '--data-dir', dataDir]).code).toBe(0);
    // ... but not with the witness: the newest checkpoint has no cosignature.
    const caught = gatehouse([
      'audit',
      'verify',
      '--data-dir',
      dataDir,
      '--witness',
      witnessKey,
      '--quorum',
      '1',
      '--json',
    ]);
    expect(caught.code).toBe(1);
    expect(JSON.parse(caught.stdout)).toMatchObject({ ok: false, code: 'CHECKPOINT_NOT_WITNESSED' });
    expect(JSON.parse(caught.stdout).firstBadIndex).toBeLessThanOrEqual(cut);
    // An export of the rewritten log, verified offline with the witness: caught the same way.
    expect(verifyExport('rewritten.jsonl')).toMatchObject({ ok: false, code: 'CHECKPOINT_NOT_WITNESSED' });
    expect(witness.stderr()).toMatch(/"status":422/);
  });
});

/** Exports the data dir's log and verifies the file offline with the log key and the witness's. */
function verifyExport(name: string): Record<string, unknown> {
  const file = join(witnessDir, name);
  const exported = gatehouse(['audit', 'export', '--data-dir', dataDir, '--out', file]);
  expect(exported.code, exported.stderr).toBe(0);
  const verified = gatehouse([
    'audit',
    'verify',
    '--file',
    file,
    '--public-key',
    logKey,
    '--witness',
    witnessKey,
    '--quorum',
    '1',
    '--json',
  ]);
  return JSON.parse(verified.stdout) as Record<string, unknown>;
}

async function newestCheckpoint(): Promise<{ size: number; note: string } | undefined> {
  const sql = await openTestSql(dataDir);
  try {
    const row = await sql.get<{ size: number; note: string }>(
      'select size, note from audit_checkpoints order by size desc limit 1',
    );
    return row && { size: Number(row.size), note: row.note };
  } finally {
    await sql.close();
  }
}

async function newestCheckpointSize(): Promise<number> {
  return (await newestCheckpoint())?.size ?? 0;
}

/** What an operator with database access does: the tail from `cut` on, and all that vouched for it. */
async function truncateLog(cut: number): Promise<void> {
  const sql = await openTestSql(dataDir);
  try {
    await sql.run('delete from audit_events where idx >= ?', cut);
    await sql.run('delete from audit_checkpoints where size > ?', cut);
    await sql.run('delete from audit_cosignatures where size > ?', cut);
    // Subtree (level, i) covers leaves [i·2^level, (i+1)·2^level): gone once it reaches the cut.
    for (let level = 1; level < 40; level++) {
      await sql.run(
        'delete from audit_nodes where level = ? and idx >= ?',
        level,
        Math.floor(cut / 2 ** level),
      );
    }
  } finally {
    await sql.close();
  }
}
