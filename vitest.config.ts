import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

const include = ['src/**/*.test.ts', 'test/**/*.test.ts', 'packages/*/src/**/*.test.ts'];

/**
 * The PostgreSQL pass (GATEHOUSE_TEST_DATABASE_URL set, see scripts/test.js) runs every test file that
 * reaches a store or Redis: through openStore or openGatehouseStore, a demo server, a started Gatehouse, the test
 * database or the test Redis, or the CLI on a data dir. A file that reaches none (Merkle vectors, DLP properties, policy
 * evaluation) would only run again unchanged.
 */
const reachesStore = /openStore|openGatehouseStore|startDemo|startGatehouse|support\/database|support\/redis/;
/** The CLI reaches PostgreSQL only on a data dir it is given (test/support/cli.ts); without one it is embedded. */
const runsCli = /support\/cli|bin\/gatehouse/;
const givesDataDir = /--data-dir|GATEHOUSE_DATA_DIR/;

function storeFreeFiles(): string[] {
  return ['src', 'test', 'packages/sdk/src']
    .flatMap((dir) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((file) => join(dir, file)))
    .filter((file) => {
      if (!file.endsWith('.test.ts')) return false;
      const text = readFileSync(file, 'utf8');
      return !reachesStore.test(text) && !(runsCli.test(text) && givesDataDir.test(text));
    });
}

const onPostgres = Boolean(process.env.GATEHOUSE_TEST_DATABASE_URL);

export default defineConfig({
  test: {
    include,
    exclude: [...configDefaults.exclude, ...(onPostgres ? storeFreeFiles() : [])],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One worker runs every file of a pass: a fresh process per file paid seconds each to load the
    // modules and warm up Cedar's Wasm, the seeding and Fastify again. Test files hold no process-wide
    // state past their afterAll; `npm test -- --isolate` runs each file in its own process.
    isolate: false,
    globalSetup: ['test/support/database-global.ts'],
    setupFiles: ['test/support/fast-check-seed.ts', 'test/support/database-setup.ts'],
  },
});
