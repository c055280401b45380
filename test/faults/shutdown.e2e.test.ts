import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gatehouse } from '../support/cli.js';
import { testDatabaseEnvSync } from '../support/database.js';

/**
 * Graceful shutdown under faults (issue 25 item 6), on the real process: a client that never finishes
 * sending its request and a second SIGTERM mid-shutdown. The process still closes that connection at the
 * grace deadline, runs the final closers (a checkpoint over every event) and exits 0.
 */

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('shutdown with a half-sent request and repeated signals', () => {
  it('closes the slow connection at the deadline, ignores the second SIGTERM, signs the final checkpoint, exits 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-fault-shutdown-'));
    const configFile = join(dataDir, 'gatehouse.json');
    writeFileSync(configFile, JSON.stringify({ server: { shutdownGraceMs: 1500 } }));
    const port = await freePort();
    const bin = fileURLToPath(new URL('../../bin/gatehouse.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--demo', '--port', String(port), '--data-dir', dataDir],
      {
        env: {
          PATH: process.env.PATH,
          GATEHOUSE_LOG_LEVEL: 'warn',
          GATEHOUSE_CONFIG: configFile,
          ...testDatabaseEnvSync(dataDir),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk) => {
        stderr += String(chunk);
        if (stderr.includes('Gatehouse is ready')) resolve();
      });
      child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
    });
    expect((await fetch(`http://127.0.0.1:${port}/crm/v1/contacts`)).status).toBe(401);

    // Headers sent, body promised and never delivered: the connection is busy, not idle.
    const slow = connect({ host: '127.0.0.1', port });
    slow.on('error', () => undefined);
    await new Promise<void>((resolve) => slow.once('connect', resolve));
    slow.write(
      `POST /crm/v1/notes HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"bo`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');
    child.kill('SIGINT');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(slow.destroyed || slow.readableEnded).toBe(true);
    slow.destroy();

    const verified = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(verified.code, verified.stderr).toBe(0);
    const report = JSON.parse(verified.stdout) as { ok: boolean; size: number; checkpoints: number };
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThan(0);
    expect(stderr).toContain('already shutting down');
  });
});
