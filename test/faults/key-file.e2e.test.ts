import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatehouse } from '../support/cli.js';
import { openTestSql } from '../support/database.js';

/**
 * A damaged key (issue 25 item 9), provoked for real: the checkpoint signing key's envelope cut short
 * in the store where secrets live, then the real `gatehouse serve` started. Start-up stops with one line
 * that names the secret, where it is and what to do, instead of a raw JSON parse error.
 */
describe('a damaged key', () => {
  it('stops `serve` with one line naming the secret, where it lives and the fix', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-keyfile-'));
    expect(gatehouse(['audit', 'public-key', '--data-dir', dataDir]).code).toBe(0);
    const sql = await openTestSql(dataDir);
    try {
      await sql.run(
        'update secrets set envelope = ? where name = ?',
        '{"v":1,"key":"',
        'audit/checkpoint-signing-key',
      );
    } finally {
      await sql.close();
    }

    const started = gatehouse(['serve', '--demo', '--port', '0', '--data-dir', dataDir], {
      GATEHOUSE_LOG_LEVEL: 'silent',
    });
    expect(started.code).not.toBe(0);
    const lines = started.stderr.split('\n').filter((line) => line.startsWith('gatehouse:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('audit/checkpoint-signing-key');
    expect(lines[0]).toContain('the database');
    expect(lines[0]).toMatch(/restore it from a backup/);
    expect(started.stderr).not.toMatch(/SyntaxError|Unexpected token|at JSON\.parse/);
  });
});
