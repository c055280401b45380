import type { FileKind } from './files.js';
import type { LineIndex } from './lines.js';
import type { ScanFinding } from './types.js';

/**
 * Calls that bypass the gateway: a CRM's API host in the app's code or configuration, or a CRM SDK
 * among its dependencies. An app that talks to the CRM itself escapes scopes, row filters, masking,
 * DLP and the audit trail, whatever its manifest says.
 */

interface CrmDomain {
  readonly domain: string;
  readonly crm: string;
  /** Only these hosts of the domain serve data (the rest of hubspot.com is the vendor's site). */
  readonly only?: RegExp;
}

const domains: readonly CrmDomain[] = [
  { domain: 'salesforce.com', crm: 'Salesforce' },
  { domain: 'force.com', crm: 'Salesforce' },
  { domain: 'cloudforce.com', crm: 'Salesforce' },
  { domain: 'visualforce.com', crm: 'Salesforce' },
  { domain: 'salesforce-sites.com', crm: 'Salesforce' },
  { domain: 'hubapi.com', crm: 'HubSpot' },
  { domain: 'hubspot.com', crm: 'HubSpot', only: /^api[a-z0-9-]*\.hubspot\.com$/ },
  { domain: 'dynamics.com', crm: 'Microsoft Dynamics 365' },
];

/** Sites of the vendors that serve people, not data: a link to documentation is no call. */
const humanHosts =
  /^(?:www|help|developer|developers|docs|status|trailhead|community|knowledge|success|appexchange)\./;

const escaped = domains.map((d) => d.domain.replace(/[.-]/g, '\\$&')).join('|');
/** A host name ending in one of the domains, with at least one label before it; not an e-mail's domain. */
const hostPattern = new RegExp(
  `(?<![A-Za-z0-9@._-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){1,8}(?:${escaped}))(?![A-Za-z0-9-]|\\.[A-Za-z0-9])`,
  'gi',
);

/** SDKs that talk to a CRM directly (npm package names). */
export const crmPackages: Readonly<Record<string, string>> = {
  jsforce: 'Salesforce',
  '@jsforce/jsforce-node': 'Salesforce',
  nforce: 'Salesforce',
  '@salesforce/core': 'Salesforce',
  'node-salesforce': 'Salesforce',
  '@hubspot/api-client': 'HubSpot',
  '@hubspot/cli-lib': 'HubSpot',
  hubspot: 'HubSpot',
  'dynamics-web-api': 'Microsoft Dynamics 365',
};

export function findCrmHosts(text: string, file: string, kind: FileKind, lines: LineIndex): ScanFinding[] {
  if (kind !== 'code' && kind !== 'config') return [];
  const findings: ScanFinding[] = [];
  const seen = new Set<string>();
  hostPattern.lastIndex = 0;
  for (let m = hostPattern.exec(text); m !== null; m = hostPattern.exec(text)) {
    const host = (m[1] as string).toLowerCase();
    const domain = domains.find((d) => host === d.domain || host.endsWith(`.${d.domain}`));
    if (!domain || host === domain.domain || humanHosts.test(host)) continue;
    if (domain.only && !domain.only.test(host)) continue;
    const line = lines.lineOf(m.index);
    // One finding per host and line is enough to act on.
    if (seen.has(`${line}:${host}`)) continue;
    seen.add(`${line}:${host}`);
    const comment = inComment(text, m.index);
    findings.push({
      rule: comment ? 'crm.host_in_comment' : 'crm.direct_call',
      severity: comment ? 'low' : 'high',
      file,
      line,
      message: comment
        ? `a comment names the ${domain.crm} host ${host}: make sure the code reaches ${domain.crm} only through the Gatehouse gateway`
        : `the app calls ${domain.crm} directly at ${host}, bypassing the gateway: use the Gatehouse gateway (/crm/v1/...) with a Gatehouse token`,
    });
  }
  return findings;
}

/** The line, up to the match, opens a comment (`//`, `#`, `/*`, `*`, `<!--`). */
function inComment(text: string, offset: number): boolean {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const before = text.slice(lineStart, offset);
  return /^\s*(?:\/\/|#|\/\*|\*|<!--)/.test(before) || /\s\/\/[^'"`]*$/.test(before);
}
