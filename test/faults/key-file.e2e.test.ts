import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatehouse } from '../support/cli.js';

/**
 * A damaged key file (issue 25 item 9), provoked for real: the checkpoint signing key's file zeroed on
 * disk, then the real `gatehouse serve` started. Start-up stops with one line that names the secret,
 * its file and what to do, instead of a raw JSON parse error.
 */
describe('a zeroed key file', () => {
  it('stops `serve` with one line naming the secret, the file and the fix', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-keyfile-'));
    expect(gatehouse(['audit', 'public-key', '--data-dir', dataDir]).code).toBe(0);
    const file = join(dataDir, 'secrets', 'audit__checkpoint-signing-key.json');
    writeFileSync(file, Buffer.alloc(64));

    const started = gatehouse(['serve', '--demo', '--port', '0', '--data-dir', dataDir], {
      GATEHOUSE_LOG_LEVEL: 'silent',
    });
    expect(started.code).not.toBe(0);
    const lines = started.stderr.split('\n').filter((line) => line.startsWith('gatehouse:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('audit/checkpoint-signing-key');
    expect(lines[0]).toContain(file);
    expect(lines[0]).toMatch(/restore it from a backup/);
    expect(started.stderr).not.toMatch(/SyntaxError|Unexpected token|at JSON\.parse/);
  });
});
