import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseEnvSync } from './support/database.js';

/**
 * The README's walk-through, run as written: its `sh` blocks are extracted, each `$ ` command run in
 * order in one bash session against a demo started by the CLI, and each output compared by shape with
 * the one the README shows (JSON by its keys, text line by line with numbers and ids as wildcards).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'gatehouse.js');

interface Step {
  command: string;
  expected: string[];
}

/** The `$ ` commands of the walk-through's sh blocks (continuation lines kept) and the output under each. */
export function walkthroughSteps(readme: string): Step[] {
  const start = readme.indexOf('## Walk-through');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const steps: Step[] = [];
  for (const [, block] of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = (block as string).replace(/\n$/, '').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.startsWith('$ ')) {
        let command = line.slice(2);
        while (command.endsWith('\\')) command += `\n${lines[++i]}`;
        steps.push({ command, expected: [] });
      } else steps.at(-1)?.expected.push(line);
    }
  }
  return steps;
}

/** The shape of a JSON value: its keys and the types of their values, arrays by their first element. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  }
  return typeof value;
}

const parsed = (line: string): unknown => {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
};

/** One expected line as a pattern: numbers, ids, hashes and keys (long base64-ish runs) are wildcards. */
function linePattern(line: string): string {
  return line
    .split(/([A-Za-z0-9+/=_-]{12,}|\d+(?:\.\d+)?)/)
    .map((part, i) => (i % 2 ? '\\S+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
}

/** Whether the actual output has the expected shape; `...` in the expected output stands for any lines. */
export function sameShape(expected: string[], actual: string): boolean {
  const lines = actual.replace(/\n$/, '').split('\n');
  if (expected.length && expected.every((line) => typeof parsed(line) === 'object')) {
    return (
      lines.length === expected.length &&
      expected.every(
        (line, i) => JSON.stringify(shape(parsed(line))) === JSON.stringify(shape(parsed(lines[i] ?? ''))),
      )
    );
  }
  if (!expected.length) return actual === '';
  const pattern = expected
    .map((line) => (line === '...' ? '(?:[^\\n]*\\n)*?' : `${linePattern(line)}\\n`))
    .join('');
  return new RegExp(`^${pattern}$`).test(`${lines.join('\n')}\n`);
}

const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-walkthrough-'));
const env = { ...process.env, ...testDatabaseEnvSync(dataDir), GATEHOUSE_DATA_DIR: dataDir };
let server: ChildProcess;
let url = '';
let banner = '';

beforeAll(async () => {
  server = spawn(process.execPath, [bin, 'serve', '--demo', '--port', '0', '--log-format', 'json'], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    server.stderr?.on('data', (chunk: Buffer) => {
      banner += chunk.toString('utf8');
      const ready = /Gatehouse is ready at (http:\/\/\S+)/.exec(banner);
      if (ready) resolve(ready[1] as string);
    });
    server.on('exit', (code) => reject(new Error(`the demo exited ${code}: ${banner}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.on('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the README's walk-through", () => {
  const steps = walkthroughSteps(readFileSync(join(root, 'README.md'), 'utf8'));

  it('is complete: no elided arguments, no file outside the repository, one port', () => {
    expect(steps.length).toBeGreaterThan(20);
    for (const { command } of steps) {
      expect(command).not.toMatch(/\.\.\.|\.\.\/shared/);
      for (const port of command.matchAll(/127\.0\.0\.1:(\d+)/g)) expect(port[1]).toBe('8080');
    }
  });

  it('runs as written against a demo, and each output has the shape the README shows', () => {
    const marker = '@@gatehouse-walkthrough-step@@';
    // npx would find this same bin/gatehouse.js; the demo listens where the test put it.
    const script = steps
      .map(({ command }) =>
        // /tmp first: the paths of node and of the checkout may themselves be under /tmp.
        command
          .replaceAll('/tmp/', `${dataDir}/`)
          .replaceAll('npx gatehouse', `${process.execPath} ${bin}`)
          .replaceAll('http://127.0.0.1:8080', url),
      )
      .map((command) => `echo ${marker}\n${command}`)
      .join('\n');
    const run = spawnSync('bash', ['-c', `exec 2>&1\n${script}`], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    const outputs = run.stdout.split(`${marker}\n`).slice(1);
    expect(outputs).toHaveLength(steps.length);
    steps.forEach(({ command, expected }, i) => {
      expect(sameShape(expected, outputs[i] ?? ''), `$ ${command}\n--- got:\n${outputs[i]}`).toBe(true);
    });
    // About 25 commands, a dozen of them starting the CLI, and the drill: longer than one request.
  }, 180_000);
});

describe("the server's banner", () => {
  it('prints a token hint that works as printed, on a data dir that is not the default', () => {
    const hint = /^ {2}token: +(.*)$/m.exec(banner)?.[1] ?? '';
    expect(hint).toContain(`--data-dir ${dataDir}`);
    const elsewhere = Object.fromEntries(
      Object.entries(env).filter(([name]) => name !== 'GATEHOUSE_DATA_DIR'),
    );
    const run = spawnSync(
      'bash',
      [
        '-c',
        `${hint.replace('npx gatehouse', `${process.execPath} ${bin}`)}\necho "$ACCESS_TOKEN" | cut -c1-10`,
      ],
      { cwd: tmpdir(), env: elsewhere, encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.stdout, run.stderr).toBe('eyJhbGciOi\n');
  });
});

describe('shape comparison', () => {
  it('matches JSON by keys and text with numbers and ids as wildcards; ... skips lines', () => {
    expect(sameShape(['{"a":1,"b":[{"c":"x"}]}'], '{"b":[{"c":"y"},{"c":"z"}],"a":2}\n')).toBe(true);
    expect(sameShape(['{"a":1}'], '{"a":1,"extra":true}\n')).toBe(false);
    expect(sameShape(['audit log intact: 14 events'], 'audit log intact: 90 events\n')).toBe(true);
    expect(sameShape(['audit log intact: 14 events'], 'audit log BROKEN at 3\n')).toBe(false);
    expect(sameShape(['first', '...', 'last'], 'first\na\nb\nlast\n')).toBe(true);
    expect(sameShape([], '')).toBe(true);
    expect(sameShape([], 'unexpected\n')).toBe(false);
  });
});
