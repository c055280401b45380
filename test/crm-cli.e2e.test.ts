import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { testDatabaseEnvSync } from './support/database.js';

/** `gatehouse crm describe` and `serve --demo --crm salesforce`, through the built CLI. */

const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-crm-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const salesforceConfig = join(scratch, 'salesforce.json');
writeFileSync(salesforceConfig, JSON.stringify({ demo: true, crm: { kind: 'salesforce' } }));

interface Described {
  crm: string;
  objects: Array<{ object: string; vendorObject: string; fields: Array<Record<string, unknown>> }>;
  unmapped_sensitive: Array<{ object: string; field: string; suggested: string }>;
}

describe('gatehouse crm describe', () => {
  it('has --help, --json and --data-dir', () => {
    const result = gatehouse(['crm', 'describe', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--json');
    expect(result.stdout).toContain('--data-dir');
  });

  it("prints the Salesforce org's objects, how they map, and flags sensitive fields nothing maps onto", () => {
    const dataDir = join(scratch, 'describe');
    const result = gatehouse([
      'crm',
      'describe',
      '--json',
      '--config',
      salesforceConfig,
      '--data-dir',
      dataDir,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const described = JSON.parse(result.stdout) as Described;
    expect(described.crm).toBe('salesforce');
    const contact = described.objects.find((o) => o.object === 'contact');
    expect(contact?.vendorObject).toBe('Contact');
    expect(contact?.fields.find((f) => f.name === 'National_Id__c')).toMatchObject({
      mappedTo: 'national_id',
      encrypted: true,
      suggested: 'pii',
    });
    expect(described.unmapped_sensitive).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ object: 'contact', field: 'MobilePhone', suggested: 'pii' }),
        expect.objectContaining({ object: 'account', field: 'Tax_Id__c', suggested: 'pii' }),
      ]),
    );
    const human = gatehouse(['crm', 'describe', '--config', salesforceConfig, '--data-dir', dataDir]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/! MobilePhone\s+phone\s+PII;GDPR\s+unmapped, sensitive \(pii\)/);
    expect(human.stdout).toMatch(/sensitive field\(s\) not mapped/);
  });

  it('refuses a connected app without its consumer key in one line', () => {
    const file = join(scratch, 'production.json');
    writeFileSync(
      file,
      JSON.stringify({ crm: { kind: 'salesforce' }, idp: { issuer: 'https://idp.example.com' } }),
    );
    const result = gatehouse(['crm', 'describe', '--config', file, '--data-dir', join(scratch, 'prod')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('crm.salesforce.clientId');
  });
});

describe('serve --demo --crm salesforce', () => {
  it("starts the Salesforce fake, names it in the banner, and governs the fake's records", async () => {
    const dataDir = join(scratch, 'serve');
    const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--demo', '--crm', 'salesforce', '--port', '0', '--data-dir', dataDir],
      {
        env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'warn', ...testDatabaseEnvSync(dataDir) },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += String(chunk);
          if (/demo users: .*\n/.test(stderr)) resolve(stderr);
        });
        child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
      });
      const vendor = /crm: +the vendor's fake at (http:\/\/\S+)/.exec(banner)?.[1];
      expect(vendor).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The fake is a Salesforce org: no session, no data.
      const anonymous = await fetch(`${vendor}/services/data/v62.0/query?q=SELECT+Id+FROM+Account`);
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toEqual([
        { message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID', fields: [] },
      ]);
      const url = /Gatehouse is ready at (http:\/\/\S+)/.exec(banner)?.[1];
      const token = gatehouse([
        'dev',
        'token',
        '--user',
        'alice',
        '--app',
        'call-notes',
        '--scope',
        'read:account.basic',
        '--data-dir',
        dataDir,
      ]).stdout.trim();
      const accounts = await fetch(`${url}/crm/v1/accounts?limit=3&fields=territory`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(accounts.status).toBe(200);
      const page = (await accounts.json()) as { records: Array<{ territory: string }> };
      expect(page.records.map((r) => r.territory)).toEqual(['EMEA', 'EMEA', 'EMEA']);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
