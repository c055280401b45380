import { randomBytes } from 'node:crypto';

/**
 * Gives this run an id that names its PostgreSQL test databases (test/support/database.ts), and drops
 * whatever a crashed test file left behind.
 */
export async function setup(): Promise<() => Promise<void>> {
  process.env.GATEHOUSE_TEST_RUN ??= randomBytes(4).toString('hex');
  const run = process.env.GATEHOUSE_TEST_RUN;
  return async () => {
    const { dropRunDatabases } = await import('./database.js');
    await dropRunDatabases(run);
  };
}
