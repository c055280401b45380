#!/usr/bin/env node
/**
 * `npm test` after the build: the whole suite on the embedded backend (SQLite, limits in memory), then,
 * when GATEHOUSE_TEST_DATABASE_URL is set (`eval "$(.ci/services.sh start)"` sets it, and CI does),
 * the whole suite again on PostgreSQL (and Redis, with GATEHOUSE_TEST_REDIS_URL). Arguments go to
 * vitest (`npm test -- test/audit.e2e.test.ts`). Ends with one line: `total: N passed, N failed`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const scaleOutVariables = ['GATEHOUSE_TEST_DATABASE_URL', 'GATEHOUSE_TEST_REDIS_URL'];
const args = process.argv.slice(2);
const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-test-report-'));

function embeddedEnv() {
  const env = { ...process.env };
  for (const name of scaleOutVariables) delete env[name];
  return env;
}

/** Runs vitest once; answers its exit code and its counts (from the JSON report). */
function pass(name, env) {
  const report = join(scratch, `${name}.json`);
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...args],
      { cwd: root, env, stdio: 'inherit' },
    );
    child.on('exit', (code, signal) => {
      let counts = { passed: 0, failed: 0, skipped: 0 };
      try {
        const json = JSON.parse(readFileSync(report, 'utf8'));
        counts = {
          passed: json.numPassedTests,
          failed: json.numFailedTests,
          skipped: json.numPendingTests + json.numTodoTests,
        };
      } catch {
        // No report: vitest itself failed; the exit code says so.
      }
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(
        `${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${seconds}s)`,
      );
      resolve({ code: code ?? (signal ? 1 : 0), counts });
    });
  });
}

const passes = [await pass('embedded', embeddedEnv())];
if (process.env.GATEHOUSE_TEST_DATABASE_URL) {
  passes.push(await pass('postgres', process.env));
} else {
  console.log(
    '\nThe PostgreSQL pass did not run: GATEHOUSE_TEST_DATABASE_URL is not set (eval "$(.ci/services.sh start)" sets it).',
  );
}
rmSync(scratch, { recursive: true, force: true });
const total = passes.reduce(
  (sum, { counts }) => ({
    passed: sum.passed + counts.passed,
    failed: sum.failed + counts.failed,
    skipped: sum.skipped + counts.skipped,
  }),
  { passed: 0, failed: 0, skipped: 0 },
);
const failed = passes.some(({ code }) => code !== 0);
console.log(`total: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(failed ? 1 : 0);
