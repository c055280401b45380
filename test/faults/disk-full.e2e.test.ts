import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../support/database.js';
import { startDemo, type Demo } from '../support/demo.js';
import { json } from '../support/http.js';

/**
 * Disk full (issue 25 item 3), provoked for real: the data dir on a tmpfs of a fixed size (root only, as
 * in CI), filled by another file. Requests are refused with 503 (never served unaudited), /readyz says
 * not ready and why, and both recover once space is freed. SQLite only: on PostgreSQL the store is not
 * in the data dir.
 */

const mountPoint = mkdtempSync(join(tmpdir(), 'gatehouse-diskfull-'));
const mounted =
  !onPostgres &&
  process.getuid?.() === 0 &&
  spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mountPoint]).status === 0;

let demo: Demo | undefined;
afterAll(async () => {
  await demo?.stop().catch(() => undefined);
  if (mounted) spawnSync('umount', ['-l', mountPoint]);
  rmdirSync(mountPoint);
});

/** Fills the file system holding `dir` with one file; answers its path. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: the disk is full.
  } finally {
    closeSync(fd);
  }
  return file;
}

describe.skipIf(!mounted)('the data dir on a full disk', () => {
  it('refuses requests with 503, reports not ready with the reason, and recovers when space is freed', async () => {
    demo = await startDemo({ dataDir: join(mountPoint, 'data'), keepDataDir: true });
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const read = () => demo!.get('/crm/v1/accounts?limit=50', token);
    expect((await read()).status).toBe(200);

    const filler = fill(mountPoint);
    await expect.poll(async () => (await read()).status, { timeout: 20_000, interval: 50 }).toBe(503);
    const ready = await demo.get('/readyz');
    expect(ready.status).toBe(503);
    const report = await json<{ checks: Record<string, { ok: boolean; detail?: string }> }>(ready);
    expect(report.checks.audit?.ok).toBe(false);
    expect(report.checks.audit?.detail).toMatch(/cannot take events/);

    rmSync(filler);
    await expect.poll(async () => (await read()).status, { timeout: 20_000, interval: 200 }).toBe(200);
    expect((await demo.get('/readyz')).status).toBe(200);
  });
});
