import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configEntries, demoProfile, explainConfig, loadConfig } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A working directory holding `gatehouse.yaml` with the given text. */
function withFile(yaml: string): string {
  const cwd = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
  dirs.push(cwd);
  writeFileSync(join(cwd, 'gatehouse.yaml'), yaml);
  return cwd;
}

describe('maps merge with the defaults key by key', () => {
  it('overriding one role keeps every other role, and the fields of that role it did not name', () => {
    const cwd = withFile('roles:\n  sales_rep:\n    scopes: [read:account.basic]\n');
    const config = loadConfig({ cwd, env: {} });
    expect(config.roles.sales_rep?.scopes).toEqual(['read:account.basic']);
    // The default masks stay: an override never unmasks a field it did not mention.
    expect(config.roles.sales_rep?.masks['contact.phone']).toBe('last4');
    expect(config.roles.sales_manager?.scopes).toContain('read:contact.pii');
    expect(Object.keys(config.roles)).toEqual(['sales_rep', 'sales_manager', 'auditor', 'admin', 'reviewer']);
  });

  it('adds a demo user and a scope beside the defaults', () => {
    const cwd = withFile(
      [
        'demoUsers:',
        '  frank: { email: frank@example.com, name: Frank Fox, role: sales_rep, territory: APAC }',
        'scopes:',
        "  'read:account.extra': { object: account, fields: [industry] }",
      ].join('\n'),
    );
    const config = loadConfig({ cwd, env: {} });
    expect(Object.keys(config.demoUsers)).toEqual(['alice', 'bob', 'erin', 'carol', 'dave', 'rita', 'frank']);
    expect(config.scopes['read:contact.basic']).toBeDefined();
    expect(config.scopes['read:account.extra']).toEqual({ object: 'account', fields: ['industry'] });
  });

  it('an override inside a default entry changes that config only, not the defaults of the next one', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
    dirs.push(cwd);
    const narrowed = loadConfig({
      cwd,
      env: {},
      overrides: { 'roles.sales_manager.scopes': ['read:account.basic'] },
    });
    expect(narrowed.roles.sales_manager?.scopes).toEqual(['read:account.basic']);
    expect(loadConfig({ cwd, env: {} }).roles.sales_manager?.scopes).toContain('read:opportunity.aggregate');
  });

  it('replace: true swaps the whole map', () => {
    const cwd = withFile('roles:\n  replace: true\n  viewer:\n    scopes: [read:account.basic]\n');
    expect(Object.keys(loadConfig({ cwd, env: {} }).roles)).toEqual(['viewer']);
  });

  it('a replace that is not a boolean, or a map that is not a mapping, is a ConfigError naming the key', () => {
    expect(() => loadConfig({ cwd: withFile('roles:\n  replace: yes please\n'), env: {} })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('roles.replace') }),
    );
    expect(() => loadConfig({ cwd: withFile('scopes: [read:account.basic]\n'), env: {} })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('scopes') }),
    );
  });
});

describe('where each value came from (config show)', () => {
  it('names default, file, env and flag, strongest last', () => {
    const cwd = withFile('server:\n  port: 9000\nlogLevel: warn\nroles:\n  sales_rep:\n    scopes: []\n');
    const { originOf } = explainConfig({
      cwd,
      env: { GATEHOUSE_LOG_LEVEL: 'debug' },
      overrides: { 'server.host': '0.0.0.0' },
    });
    const file = `file ${join(cwd, 'gatehouse.yaml')}`;
    expect(originOf('server.port')).toBe(file);
    expect(originOf('logLevel')).toBe('env GATEHOUSE_LOG_LEVEL');
    expect(originOf('server.host')).toBe('flag server.host');
    expect(originOf('roles.sales_rep.scopes')).toBe(file);
    expect(originOf('roles.sales_rep.masks')).toBe('default');
    expect(originOf('roles.bob')).toBe('default');
    expect(originOf('broker.accessTokenTtlSeconds')).toBe('default');
  });

  it('hides secrets and the password of a URL, and nothing else', () => {
    const cwd = withFile(
      [
        'database: { url: "postgres://gatehouse:hunter2-secret@db.internal:5432/gatehouse" }',
        'idp: { issuer: "https://idp.example.com", clientSecret: "s3cr3t-client-secret" }',
      ].join('\n'),
    );
    const { config, originOf } = explainConfig({ cwd, env: {} });
    const entries = configEntries(config, originOf);
    const text = JSON.stringify(entries);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('s3cr3t');
    const value = (key: string) => entries.find((entry) => entry.key === key)?.value;
    expect(value('database.url')).toBe('postgres://gatehouse:(hidden)@db.internal:5432/gatehouse');
    expect(value('idp.clientSecret')).toBe('(hidden)');
    expect(value('gateway.dlp.incoming.secret')).toBe('refuse');
    expect(value('idp.issuer')).toBe('https://idp.example.com');
  });
});

describe('the demo profile (serve --demo)', () => {
  it('puts a person trying the demo at 3 a.m. on a Sunday inside working hours, unless the file says otherwise', async () => {
    const { isWorkingTime, workingHoursOf } = await import('../detect/index.js');
    const sunday3am = Date.parse('2026-12-06T03:00:00Z') / 1000;
    const demo = loadConfig({ cwd: withFile(''), env: {}, overrides: { demo: true }, profile: demoProfile });
    for (const user of ['alice@example.com', 'erin@example.com']) {
      expect(isWorkingTime(workingHoursOf(demo.detect.workingHours, user), sunday3am)).toBe(true);
    }
    expect(demo.limits.bulkExport?.minimum).toBe(500);
    const plain = loadConfig({ cwd: withFile(''), env: {} });
    expect(isWorkingTime(workingHoursOf(plain.detect.workingHours, 'alice@example.com'), sunday3am)).toBe(
      false,
    );
    const strict = explainConfig({
      cwd: withFile('detect:\n  workingHours:\n    default:\n      start: "09:00"\n'),
      env: {},
      profile: demoProfile,
    });
    expect(strict.config.detect.workingHours.default.start).toBe('09:00');
    expect(strict.originOf('detect.workingHours.default.end')).toBe('demo profile');
  });
});

describe('residency of alert sinks', () => {
  const webhook = { url: 'https://siem.example.com/alerts', region: 'US' };
  it('refuses a sink outside the home region unless forwardTo names it, with its mechanism', () => {
    expect(() =>
      loadConfig({ env: {}, overrides: { dataDir: '/tmp/unused', 'detect.alerts.webhook': webhook } }),
    ).toThrow(/detect\.alerts\.webhook\.region.*forwardTo/s);
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: '/tmp/unused',
        'detect.alerts.webhook': webhook,
        'compliance.residency.forwardTo': [{ region: 'US', mechanism: 'SCC 2021/914 module 1' }],
      },
    });
    expect(config.detect.alerts.webhook?.region).toBe('US');
  });
});
