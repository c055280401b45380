import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { testDatabaseEnvSync } from './support/database.js';

const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function expectOneCleanLine(stderr: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('gatehouse CLI', () => {
  it('lists every command in --help', () => {
    const result = gatehouse(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['serve', 'seed', 'dev', 'app', 'audit']) expect(result.stdout).toContain(command);
    // Each command's module is loaded only when it runs (or for --help): none may go missing from here.
    const listed = [...result.stdout.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map(([, name]) => name);
    expect(listed).toEqual([
      ...['serve', 'seed', 'dev', 'login', 'logout', 'whoami', 'app', 'offboard', 'policy', 'playbook'],
      ...['scan', 'classify', 'audit', 'token', 'keys', 'incident', 'drill', 'config', 'scrub', 'simulate'],
      ...['compliance', 'dsr', 'witness', 'crm', 'help'],
    ]);
  });

  it("loads only what the command needs: whoami reads the login file, without the store's, Cedar's or HTTP's packages", () => {
    const probe = fileURLToPath(new URL('fixtures/loaded-packages.mjs', import.meta.url));
    const result = gatehouse(['whoami', '--json', '--data-dir', join(scratch, 'whoami')], {
      NODE_OPTIONS: `--import ${probe}`,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ verified: false });
    const loaded = /^loaded: (.*)$/m.exec(result.stderr)?.[1]?.split(' ') ?? [];
    expect(loaded).toContain('commander');
    for (const heavy of ['better-sqlite3', '@cedar-policy/cedar-wasm', 'undici', 'pg', 'fastify'])
      expect(loaded).not.toContain(heavy);
  });

  it.each([
    ['serve'],
    ['seed'],
    ['dev', 'id-token'],
    ['app', 'list'],
    ['audit', 'verify'],
    ['audit', 'export'],
    ['config', 'show'],
  ])('%s %s has --help', (...command) => {
    const result = gatehouse([...command.filter(Boolean), '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--json');
    expect(result.stdout).toContain('--data-dir');
  });

  it('refuses an invalid configuration with one line naming the key and the problem', () => {
    const file = join(scratch, 'bad.yaml');
    writeFileSync(file, 'server:\n  port: 99999\n');
    const result = gatehouse(['serve', '--demo', '--config', file, '--data-dir', join(scratch, 'bad')]);
    expect(result.code).toBe(1);
    expectOneCleanLine(result.stderr);
    expect(result.stderr).toContain('server.port');
  });

  it('refuses an unknown configuration key by name', () => {
    const file = join(scratch, 'typo.yaml');
    writeFileSync(file, 'server:\n  prot: 8080\n');
    const result = gatehouse(['serve', '--config', file, '--data-dir', join(scratch, 'typo')]);
    expect(result.code).toBe(1);
    expectOneCleanLine(result.stderr);
    expect(result.stderr).toContain('server.prot');
  });

  it('refuses malformed YAML with one line', () => {
    const file = join(scratch, 'broken.yaml');
    writeFileSync(file, 'server: [unclosed\n');
    const result = gatehouse(['app', 'list', '--config', file, '--data-dir', join(scratch, 'broken')]);
    expect(result.code).toBe(1);
    expectOneCleanLine(result.stderr);
  });

  it('config show prints each effective value with its source, one role overridden and the rest kept', () => {
    const file = join(scratch, 'one-role.yaml');
    writeFileSync(
      file,
      'roles:\n  sales_rep:\n    scopes: [read:account.basic]\nidp:\n  clientSecret: do-not-print-me\n',
    );
    const result = gatehouse(['config', 'show', '--json', '--config', file], { PORT: '8181' });
    expect(result.code).toBe(0);
    const entries = JSON.parse(result.stdout) as { key: string; value: unknown; source: string }[];
    const entry = (key: string) => entries.find((e) => e.key === key);
    expect(entry('roles.sales_rep.scopes')).toEqual({
      key: 'roles.sales_rep.scopes',
      value: ['read:account.basic'],
      source: `file ${file}`,
    });
    expect(entry('roles.sales_manager.scopes')).toMatchObject({ source: 'default' });
    expect(entry('server.port')).toMatchObject({ value: 8181, source: 'env PORT' });
    expect(entry('idp.clientSecret')?.value).toBe('(hidden)');
    expect(result.stdout).not.toContain('do-not-print-me');
    const human = gatehouse(['config', 'show', '--config', file]);
    expect(human.stdout).toMatch(/^roles\.sales_manager\.scopes +\[.*\] +\(default\)$/m);
  });

  it('refuses dev id-token outside demo mode', () => {
    const result = gatehouse(['dev', 'id-token', '--user', 'alice', '--data-dir', join(scratch, 'not-demo')]);
    expect(result.code).toBe(1);
    expectOneCleanLine(result.stderr);
    expect(result.stderr).toContain('DEMO_ONLY');
  });

  it.each([
    [['--host', '0.0.0.0'], {}],
    [[], { GATEHOUSE_HOST: '192.168.1.10' }],
  ])('refuses demo mode on a non-loopback address (%j %j) unless the unsafe flag says so', (flags, env) => {
    const result = gatehouse(['serve', '--demo', ...flags, '--data-dir', join(scratch, 'demo-net')], env);
    expect(result.code).toBe(1);
    expectOneCleanLine(result.stderr);
    expect(result.stderr).toContain('demo mode listens on loopback only');
    expect(result.stderr).toContain('--unsafe-demo-on-network');
    expect(gatehouse(['serve', '--help']).stdout).toContain('--unsafe-demo-on-network');
  });

  it('answers a usage error with exit 2', () => {
    expect(gatehouse(['seed', '--no-such-flag']).code).toBe(2);
    expect(gatehouse(['no-such-command']).code).toBe(2);
  });
});

describe('scale-out settings this build cannot honour', () => {
  it.each([
    ['GATEHOUSE_DATABASE_URL', 'database.url'],
    ['GATEHOUSE_REDIS_URL', 'redis.url'],
  ])('%s is refused with one line instead of being ignored', (variable, key) => {
    const result = gatehouse(['serve', '--demo', '--data-dir', join(scratch, `scale-${key}`)], {
      [variable]: 'postgres://127.0.0.1:1/x',
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toContain(key);
  });
});

describe('serve banner', () => {
  it('names the metrics listener of server.metricsPort, which answers without a token', async () => {
    const dataDir = join(scratch, 'metrics-port');
    const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'serve', '--demo', '--port', '0', '--data-dir', dataDir], {
      env: {
        PATH: process.env.PATH,
        GATEHOUSE_LOG_LEVEL: 'warn',
        GATEHOUSE_METRICS_PORT: '0',
        ...testDatabaseEnvSync(dataDir),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += String(chunk);
          if (/metrics: \S+\n/.test(stderr)) resolve(stderr);
        });
        child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
      });
      const main = /Gatehouse is ready at (http:\/\/\S+)/.exec(banner)?.[1];
      const metrics = /metrics: (http:\/\/\S+)/.exec(banner)?.[1];
      expect(metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(metrics?.startsWith(`${main}/`)).toBe(false);
      const scraped = await fetch(metrics ?? '');
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('gatehouse_http_requests_total');
      // The banner names the console, and it is served there (issue 20).
      expect(banner).toContain(`console:    ${main}/console/\n`);
      expect((await fetch(`${main}/console/`)).headers.get('content-security-policy')).toContain(
        "script-src 'self'",
      );
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
