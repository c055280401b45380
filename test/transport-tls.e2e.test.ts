import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { connectRedis } from '../src/server/redis.js';
import { openStore } from '../src/store/index.js';
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
      const plain = await openStore(config(database));
      await plain.close();
      await expect(openStore(config({ ...database, 'database.tls': {} }))).rejects.toThrow();
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
});
