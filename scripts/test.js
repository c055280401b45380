#!/usr/bin/env node
/**
 * `npm test` after the build: the whole suite on the embedded backend (SQLite, limits in memory) and,
 * when GATEHOUSE_TEST_DATABASE_URL is set (`eval "$(.ci/services.sh start)"` sets it, and CI does), the
 * whole suite again on PostgreSQL (and Redis, with GATEHOUSE_TEST_REDIS_URL). The two passes share
 * nothing (their own data dirs, databases and key prefixes) and wait on I/O much of the time, so they run
 * at once, each line of their output tagged with its pass. When GATEHOUSE_TEST_NODE24 names a copy of
 * this tree prepared for Node 24 (`.ci/node24.sh`, which CI runs), the embedded pass runs there on Node 24
 * instead: each runtime then runs one whole pass (Node 24, the supported one, embedded; Node 20, the oldest
 * `engines` admits, on PostgreSQL) rather than the embedded suite twice, which cost a third of CI's time.
 * Arguments go to vitest (`npm test -- test/audit.e2e.test.ts`). Ends with one line: `total: N passed,
 * N failed`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const scaleOutVariables = ['GATEHOUSE_TEST_DATABASE_URL', 'GATEHOUSE_TEST_REDIS_URL'];
const args = process.argv.slice(2);
const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-test-report-'));

/**
 * Node 22.1+ (the Node 24 pass) keeps the code it compiled here: vitest and its worker load the same
 * dependencies, and the later one skips compiling them.
 */
const compileCache = { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(scratch, 'compile-cache') };

function embeddedEnv() {
  const env = { ...process.env, ...compileCache };
  for (const name of scaleOutVariables) delete env[name];
  return env;
}

/** Copies a stream to ours line by line, each line tagged; resolves at its end. */
function tagged(stream, tag, to) {
  return new Promise((resolve) => {
    createInterface({ input: stream, crlfDelay: Infinity })
      .on('line', (line) => to.write(`${tag} ${line}\n`))
      .on('close', resolve);
  });
}

/**
 * Runs vitest once, in `cwd` with `node` (this tree and this Node unless told otherwise); answers its
 * exit code and its counts (from the JSON report).
 */
async function pass(name, env, { tag, extra = [], cwd = root, node = process.execPath }) {
  const report = join(scratch, `${name}.json`);
  const started = Date.now();
  const child = spawn(
    node,
    [
      join(cwd, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...extra,
      ...args,
    ],
    { cwd, env, stdio: tag ? ['ignore', 'pipe', 'pipe'] : 'inherit' },
  );
  const copied = tag
    ? Promise.all([
        tagged(child.stdout, `[${name}]`, process.stdout),
        tagged(child.stderr, `[${name}]`, process.stderr),
      ])
    : Promise.resolve();
  const [code, signal] = await new Promise((resolve) => child.on('exit', (...end) => resolve(end)));
  await copied;
  let counts = { passed: 0, failed: 0, skipped: 0, failedFiles: 0 };
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    counts = {
      passed: json.numPassedTests,
      failed: json.numFailedTests,
      skipped: json.numPendingTests + json.numTodoTests,
      failedFiles: json.numFailedTestSuites,
    };
  } catch {
    // No report: vitest itself failed; the exit code says so.
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  return { name, code: code ?? (signal ? 1 : 0), counts, seconds };
}

const scaleOut = Boolean(process.env.GATEHOUSE_TEST_DATABASE_URL);
if (!scaleOut) {
  console.log(
    'The PostgreSQL pass will not run: GATEHOUSE_TEST_DATABASE_URL is not set (eval "$(.ci/services.sh start)" sets it).\n',
  );
}
const node24 = process.env.GATEHOUSE_TEST_NODE24;
const several = scaleOut || Boolean(node24);
const passes = await Promise.all([
  node24
    ? pass(
        'node24',
        { ...embeddedEnv(), PATH: `${join(node24, '.node24', 'bin')}:${process.env.PATH}` },
        { tag: several, cwd: node24, node: join(node24, '.node24', 'bin', 'node') },
      )
    : pass('embedded', embeddedEnv(), { tag: several }),
  // Files that reach no store are not run again there, so `npm test -- <such a file>` finds none on it.
  ...(scaleOut
    ? [pass('postgres', { ...process.env, ...compileCache }, { tag: true, extra: ['--passWithNoTests'] })]
    : []),
]);
rmSync(scratch, { recursive: true, force: true });
console.log('');
for (const { name, counts, seconds, code } of passes) {
  console.log(
    `${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${seconds}s)` +
      (code !== 0 && counts.failed === 0 ? ` - vitest exited ${code}: see its errors above` : ''),
  );
}
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
