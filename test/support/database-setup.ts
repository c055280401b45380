import { afterAll } from 'vitest';
import { dropTestDatabases } from './database.js';

// Registered before the file's own hooks, so it runs after them: the stores are closed by then.
afterAll(async () => {
  await dropTestDatabases();
});
