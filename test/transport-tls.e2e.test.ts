import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { createHubSpotConnector, crmDispatcher, startHubSpotFake } from '../src/crm/index.js';
import { connectRedis } from '../src/server/redis.js';
import { openGatehouseStore } from '../src/database/index.js';
import { onPostgres, testDatabase } from './support/database.js';
import { testRedisUrl, uniquePrefix } from './support/redis.js';

// The test servers speak plain TCP: with TLS required, a node must refuse them rather than fall back.
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-transport-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TLS to the backing services', () => {
  it.skipIf(!onPostgres)(
    'database.tls: no connection to a PostgreSQL server that does not speak TLS',
    async () => {
      const config = (extra: Record<string, unknown>) =>
        loadConfig({ env: {}, cwd: dir, overrides: { dataDir: dir, ...extra } });
      const database = await testDatabase(dir);
      const plain = await openGatehouseStore(config(database));
      await plain.close();
      await expect(openGatehouseStore(config({ ...database, 'database.tls': {} }))).rejects.toThrow();
    },
  );

  it.skipIf(!testRedisUrl)('redis.tls: no connection to a Redis server that does not speak TLS', async () => {
    const config = loadConfig({
      env: {},
      cwd: dir,
      overrides: {
        dataDir: dir,
        'redis.url': testRedisUrl,
        'redis.keyPrefix': uniquePrefix('tls'),
        'redis.tls': {},
      },
    });
    await expect(connectRedis(config, pino({ level: 'silent' }))).rejects.toThrow();
  });

  it('crm.caFile: the HTTP CRM connectors trust a private CA, with verification on; without it they refuse', async () => {
    // A throwaway CA and a certificate for 127.0.0.1, made by openssl here.
    const file = (name: string) => join(dir, name);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    const quiet = { stdio: 'ignore' as const };
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...ec,
        '-days',
        '2',
        '-keyout',
        file('ca.key'),
        '-out',
        file('ca.crt'),
        '-subj',
        '/CN=test CA',
      ],
      quiet,
    );
    execFileSync(
      'openssl',
      ['req', ...ec, '-keyout', file('crm.key'), '-out', file('crm.csr'), '-subj', '/CN=crm'],
      quiet,
    );
    writeFileSync(file('crm.ext'), 'subjectAltName=IP:127.0.0.1\n');
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        file('crm.csr'),
        '-CA',
        file('ca.crt'),
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        file('crm.ext'),
        '-out',
        file('crm.crt'),
      ],
      quiet,
    );

    // HubSpot's fake behind a TLS endpoint with that certificate.
    const fake = await startHubSpotFake({ token: 'pat-tls' });
    const target = new URL(fake.url);
    const tls = createHttpsServer(
      { cert: readFileSync(file('crm.crt')), key: readFileSync(file('crm.key')) },
      (req, res) => {
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            path: req.url,
            method: req.method,
            headers: req.headers,
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        req.pipe(upstream);
      },
    );
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const baseUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    try {
      await expect(
        createHubSpotConnector({ baseUrl, token: async () => 'pat-tls', timeoutMs: 5000 }),
      ).rejects.toThrow();
      const dispatcher = crmDispatcher(file('ca.crt'));
      const connector = await createHubSpotConnector({
        baseUrl,
        token: async () => 'pat-tls',
        timeoutMs: 5000,
        dispatcher,
      });
      try {
        expect(connector.describe('contact').fields.length).toBeGreaterThan(0);
      } finally {
        connector.close();
      }
      expect(() => crmDispatcher(file('missing.crt'))).toThrow(/crm.caFile/);
    } finally {
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
      await fake.close();
    }
  });
});
