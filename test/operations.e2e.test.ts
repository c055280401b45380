import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { createLogger, startGatehouse } from '../src/server/index.js';
import { gatehouse } from './support/cli.js';
import { testDatabase, testDatabaseEnvSync } from './support/database.js';

const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-ops-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('logs', () => {
  it('never carry tokens, query strings or record values', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const dataDir = join(scratch, 'logs');
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir,
        demo: true,
        logLevel: 'debug',
        'server.port': 0,
        ...(await testDatabase(dataDir)),
      },
    });
    const server = await startGatehouse(config, { logger: createLogger('debug', sink) });
    try {
      const { mintDevIdToken } = await import('../src/devidp/index.js');
      const { serverSecrets } = await import('./support/demo.js');
      const { secrets, close } = await serverSecrets(config);
      const idToken = await mintDevIdToken({
        config,
        secrets,
        user: 'bob',
        issuer: `${server.url}/idp`,
        // The exchange is bound to the app asking: an ID token issued to its own IdP client.
        audience: 'call-notes',
      }).finally(close);
      const exchanged = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: idToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
          client_id: 'call-notes',
          scope: 'read:contact.basic read:contact.reach',
        }),
      });
      const { access_token: token } = (await exchanged.json()) as { access_token: string };
      const headers = { authorization: `Bearer ${token}` };
      const page = (await (await fetch(`${server.url}/crm/v1/contacts?limit=3`, { headers })).json()) as {
        records: { email: string; phone: string; last_name: string }[];
      };
      const email = page.records[0]?.email as string;
      await fetch(
        `${server.url}/crm/v1/contacts?filter=${encodeURIComponent(`last_name eq 'Zzyzx-secret'`)}`,
        {
          headers,
        },
      );
      await fetch(`${server.url}/crm/v1/contacts`, {
        headers: { authorization: 'Bearer forged.token.here' },
      });
      const text = lines.join('');
      expect(text).toContain('"status":200');
      for (const secret of [
        token,
        idToken,
        'forged.token.here',
        'Zzyzx-secret',
        email,
        page.records[0]?.phone,
      ]) {
        expect(text).not.toContain(secret as string);
      }
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes on SIGTERM with exit 0 and a final signed checkpoint that verifies', async () => {
    const dataDir = join(scratch, 'shutdown');
    const port = await freePort();
    const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--demo', '--port', String(port), '--data-dir', dataDir],
      {
        env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'warn', ...testDatabaseEnvSync(dataDir) },
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
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const verified = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(verified.code).toBe(0);
    const report = JSON.parse(verified.stdout) as { ok: boolean; size: number; checkpoints: number };
    expect(report).toMatchObject({ ok: true, size: 1 });
    expect(report.checkpoints).toBeGreaterThan(0);
  });
});
