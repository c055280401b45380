import { describe, expect, it } from 'vitest';
import { findCrmHosts } from './crm-hosts.js';
import { fileKind } from './files.js';
import { lineIndex } from './lines.js';

const hosts = (text: string, file = 'src/app.js') =>
  findCrmHosts(text, file, fileKind(file), lineIndex(text)).map((f) => [f.rule, f.severity, f.line]);

describe('calls that bypass the gateway', () => {
  it.each([
    ["fetch('https://acme.my.salesforce.com/services/data/v61.0/query?q=SELECT+Id+FROM+Lead')", 'Salesforce'],
    ["const login = 'https://login.salesforce.com/services/oauth2/token';", 'Salesforce'],
    ["axios.get('https://acme--uat.sandbox.lightning.force.com/lightning/o/Lead/list')", 'Salesforce'],
    ['await fetch(`https://api.hubapi.com/crm/v3/objects/contacts`)', 'HubSpot'],
    ["const base = 'https://api.hubspot.com/crm/v3/';", 'HubSpot'],
    ["const org = 'https://contoso.crm4.dynamics.com/api/data/v9.2/accounts';", 'Microsoft Dynamics 365'],
    ["const host = 'ACME.MY.SALESFORCE.COM';", 'Salesforce'],
  ])('%s', (line, crm) => {
    const text = `import x from 'y';\n${line}\n`;
    const findings = findCrmHosts(text, 'src/app.js', 'code', lineIndex(text));
    expect(findings).toEqual([
      expect.objectContaining({ rule: 'crm.direct_call', severity: 'high', line: 2 }),
    ]);
    expect(findings[0]!.message).toContain(crm);
  });

  it('finds hosts in configuration files too', () => {
    expect(hosts('SF_INSTANCE=https://acme.my.salesforce.com\n', '.env')).toEqual([
      ['crm.direct_call', 'high', 1],
    ]);
  });

  it('reports a host in a comment as low, not as a call', () => {
    expect(
      hosts(
        '// was: https://acme.my.salesforce.com, now through the gateway\nfetch(x); // acme.my.salesforce.com\n',
      ),
    ).toEqual([
      ['crm.host_in_comment', 'low', 1],
      ['crm.host_in_comment', 'low', 2],
    ]);
  });

  it.each([
    ['an e-mail address at a CRM vendor', "const support = 'help@salesforce.com';"],
    ["a vendor's marketing or documentation site", "const docs = 'https://developer.salesforce.com/docs';"],
    ['the apex domain alone', "const vendor = 'salesforce.com';"],
    ['a look-alike domain', "const host = 'acme.salesforce.com.evil.example';"],
    ['a longer domain that only ends alike', "const host = 'api.notforce.com';"],
    ['the gateway', "fetch('https://gatehouse.example.com/crm/v1/contacts')"],
  ])('no alarm for %s', (_name, line) => {
    expect(hosts(`${line}\n`)).toEqual([]);
  });

  it('does not read documents', () => {
    expect(hosts('See https://acme.my.salesforce.com for the old setup.\n', 'README.md')).toEqual([]);
  });
});
