import type { ResidencyConfig } from '../config/index.js';

/**
 * An app's compliance runbook: its record of processing in the manner of GDPR Art. 30(1) — what it
 * reads and writes (its scopes as fields in plain language), why and on which lawful basis, how long
 * copies may live, where data goes (residency and transfers), how data-subject requests reach it, who
 * approved it and which incidents it had. Built from live state by `buildRunbook` (pure), rendered as
 * Markdown or as print-ready HTML (A4, one column, no scripts).
 */

export interface RunbookField {
  readonly name: string;
  readonly label: string;
  readonly data_class: string;
}

export interface RunbookAccess {
  readonly scope: string;
  readonly access: 'read' | 'write';
  readonly object: string;
  readonly fields: readonly RunbookField[];
  /** The scope in a sentence: "reads contacts: First name, Last name (internal)". */
  readonly plain: string;
}

export interface RunbookApproval {
  readonly at: string;
  readonly action: string;
  readonly actor: string;
  readonly reason: string;
}

export interface RunbookIncident {
  readonly id: string;
  readonly rule: string;
  readonly severity: string;
  readonly state: string;
  readonly opened_at: string;
  readonly summary: string;
}

export interface Runbook {
  readonly app: { id: string; name: string; owner: string; state: string; registered_at: string };
  readonly generated_at: string;
  readonly purposes: readonly string[];
  readonly lawful_basis: string;
  readonly consent_purpose: string | null;
  readonly data_categories: readonly string[];
  readonly data_classes: readonly string[];
  readonly access: readonly RunbookAccess[];
  readonly retention: { readonly days: number; readonly statement: string };
  readonly residency: {
    readonly region: string;
    readonly home: string;
    readonly stores: string;
    readonly transfers: readonly string[];
    readonly transfer_mechanism: string | null;
    readonly statement: string;
  };
  readonly data_subject_requests: readonly string[];
  readonly approvals: readonly RunbookApproval[];
  readonly incidents: readonly RunbookIncident[];
}

/** What the runbook is built from: the app as the catalog holds it, and the installation around it. */
export interface RunbookInput {
  readonly app: {
    readonly id: string;
    readonly name: string;
    readonly owner: string;
    readonly status: string;
    readonly scopes: readonly string[];
    readonly dataClasses: readonly string[];
    readonly manifest: Readonly<Record<string, unknown>>;
    readonly createdAt: string;
  };
  readonly history: readonly { at: string; action: string; actor: string; reason: string }[];
  readonly incidents: readonly RunbookIncident[];
  readonly fieldsets: Readonly<
    Record<string, { readonly object: string; readonly fields: readonly string[] }>
  >;
  /** The CRM's label and class of each field of an object. */
  readonly fieldMeta: (object: string) => ReadonlyMap<string, { label: string; dataClass: string }>;
  readonly residency: ResidencyConfig;
  readonly now: Date;
}

/** Catalog actions that decided whether the app may run: who approved, denied, suspended or retired it. */
const decidingActions = /(register|approve|deny|suspend|restore|retire|lapse|review)/;

export function buildRunbook(input: RunbookInput): Runbook {
  const { app } = input;
  const m = app.manifest;
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const texts = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const residency = (m.residency ?? {}) as Record<string, unknown>;
  const region = text(residency.region) ?? input.residency.home;
  // Where copies live is the plan's keeps_copies (the governed app store, the app's own, or none).
  const stores = text((m.keeps_copies as Record<string, unknown> | undefined)?.where) ?? 'none';
  const transfers = texts(residency.transfers);
  const mechanism = text(residency.transfer_mechanism) ?? null;
  const retention = typeof m.retention_days === 'number' ? m.retention_days : 0;
  return {
    app: { id: app.id, name: app.name, owner: app.owner, state: app.status, registered_at: app.createdAt },
    generated_at: input.now.toISOString(),
    purposes: texts(m.purposes).length > 0 ? texts(m.purposes) : [text(m.purpose) ?? 'undeclared'],
    lawful_basis: text(m.lawful_basis) ?? 'undeclared',
    consent_purpose: text(m.consent_purpose) ?? null,
    data_categories: texts(m.data_categories),
    data_classes: [...app.dataClasses],
    access: app.scopes.map((scope) => accessOf(scope, input)),
    retention: { days: retention, statement: retentionStatement(retention, stores) },
    residency: {
      region,
      home: input.residency.home,
      stores,
      transfers,
      transfer_mechanism: mechanism,
      statement: residencyStatement(region, input.residency.home, stores, transfers, mechanism),
    },
    data_subject_requests: dsrReach(stores, texts(m.scopes)),
    approvals: input.history
      .filter((h) => decidingActions.test(h.action))
      .map(({ at, action, actor, reason }) => ({ at, action, actor, reason })),
    incidents: input.incidents,
  };
}

function accessOf(scope: string, input: RunbookInput): RunbookAccess {
  const access = scope.startsWith('write:') ? 'write' : 'read';
  const set = input.fieldsets[scope];
  if (!set) return { scope, access, object: '', fields: [], plain: `${scope}: not configured here` };
  const meta = input.fieldMeta(set.object);
  const fields = set.fields.map((name) => ({
    name,
    label: meta.get(name)?.label ?? name,
    data_class: meta.get(name)?.dataClass ?? 'internal',
  }));
  const listed = fields.map((f) => `${f.label} (${f.data_class})`).join(', ');
  const verb = access === 'read' ? 'reads' : 'writes';
  return { scope, access, object: set.object, fields, plain: `${verb} ${set.object} records: ${listed}` };
}

function retentionStatement(days: number, stores: string): string {
  if (stores === 'none') {
    return `The plan keeps no copies of CRM data; anything held for display is gone within ${days} day(s).`;
  }
  const where = stores === 'gatehouse' ? 'in the governed app store' : "in the app's own store";
  return `Copies ${where} are kept at most ${days} day(s), then purged.`;
}

function residencyStatement(
  region: string,
  home: string,
  stores: string,
  transfers: readonly string[],
  mechanism: string | null,
): string {
  const runs = `The app runs in ${region}`;
  const kept =
    stores === 'gatehouse'
      ? `; its copies stay in Gatehouse's store in ${home}`
      : stores === 'app'
        ? `; it keeps copies in its own store in ${region}`
        : '; it keeps no copies';
  const moved =
    transfers.length > 0
      ? `. Records resident in ${transfers.join(', ')} are transferred to it under ${mechanism ?? 'an undeclared mechanism'}, and each such request is audited as a transfer.`
      : `. It receives no records that reside outside ${region} where residency rules forbid it (EU-resident records stay out of reach when it runs outside the EU).`;
  return runs + kept + moved;
}

function dsrReach(stores: string, scopes: readonly string[]): string[] {
  const steps = [
    'Access, rectification and erasure are carried out in the CRM through Gatehouse; the app reads the result on its next request.',
    "The audit trail's entries about the subject are pseudonymised, never deleted, so the log still verifies.",
  ];
  if (stores === 'gatehouse')
    steps.push("The subject's documents in the governed app store are exported or deleted with the request.");
  if (stores === 'app') {
    steps.push(
      'The app keeps copies of its own: it receives each request as a signed webhook and must acknowledge it; overdue ones are escalated.',
    );
  }
  if (scopes.some((s) => s.startsWith('write:'))) {
    steps.push('Records the app wrote are CRM records and follow the same requests.');
  }
  return steps;
}

/** The runbook as Markdown. */
export function runbookMarkdown(rb: Runbook): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `# Record of processing: ${rb.app.name} (${rb.app.id})`,
    '',
    `Generated ${rb.generated_at} from live state. Owner ${rb.app.owner}; state ${rb.app.state}; registered ${rb.app.registered_at}.`,
    '',
    '## Purposes and lawful basis',
    '',
    ...rb.purposes.map((p) => `- ${p}`),
    '',
    `Lawful basis: ${rb.lawful_basis}.` +
      (rb.consent_purpose ? ` Contacts are processed only with consent to \`${rb.consent_purpose}\`.` : ''),
    '',
    '## Data it reads and writes',
    '',
    `Data categories: ${rb.data_categories.join(', ') || 'undeclared'}. Data classes: ${rb.data_classes.join(', ')}.`,
    '',
    '| scope | in plain language |',
    '|---|---|',
    ...rb.access.map((a) => `| \`${a.scope}\` | ${cell(a.plain)} |`),
    '',
    '## Retention',
    '',
    rb.retention.statement,
    '',
    '## Where data goes',
    '',
    rb.residency.statement,
    '',
    '## Data-subject requests',
    '',
    ...rb.data_subject_requests.map((s) => `- ${s}`),
    '',
    '## Approvals',
    '',
    ...(rb.approvals.length > 0
      ? ['| when | action | by | reason |', '|---|---|---|---|']
      : ['No approval recorded.']),
    ...rb.approvals.map((a) => `| ${a.at} | ${a.action} | ${cell(a.actor)} | ${cell(a.reason)} |`),
    '',
    '## Incidents',
    '',
    ...(rb.incidents.length > 0
      ? ['| id | rule | severity | state | opened | summary |', '|---|---|---|---|---|---|']
      : ['No incident recorded.']),
    ...rb.incidents.map(
      (i) => `| ${i.id} | ${i.rule} | ${i.severity} | ${i.state} | ${i.opened_at} | ${cell(i.summary)} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

const escapes: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => escapes[c] as string);

/** The runbook as a standalone, print-ready HTML page (A4; tables do not break across rows). */
export function runbookHtml(rb: Runbook): string {
  const table = (head: readonly string[], rows: readonly (readonly string[])[], empty: string) =>
    rows.length === 0
      ? `<p>${esc(empty)}</p>`
      : `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
          .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`;
  const list = (items: readonly string[]) => `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Record of processing: ${esc(rb.app.name)}</title>
<style>
@page { size: A4; margin: 18mm; }
body { font: 11pt/1.45 system-ui, sans-serif; color: #111; max-width: 180mm; margin: auto; }
h1 { font-size: 18pt; } h2 { font-size: 13pt; margin-top: 1.4em; break-after: avoid; }
table { border-collapse: collapse; width: 100%; font-size: 10pt; }
th, td { border: 1px solid #999; padding: 3px 6px; text-align: left; vertical-align: top; }
tr { break-inside: avoid; }
.meta { color: #444; }
</style></head><body>
<h1>Record of processing: ${esc(rb.app.name)} (${esc(rb.app.id)})</h1>
<p class="meta">Generated ${esc(rb.generated_at)} from live state. Owner ${esc(rb.app.owner)}; state ${esc(rb.app.state)}; registered ${esc(rb.app.registered_at)}.</p>
<h2>Purposes and lawful basis</h2>
${list(rb.purposes)}
<p>Lawful basis: ${esc(rb.lawful_basis)}.${rb.consent_purpose ? ` Contacts are processed only with consent to <code>${esc(rb.consent_purpose)}</code>.` : ''}</p>
<h2>Data it reads and writes</h2>
<p>Data categories: ${esc(rb.data_categories.join(', ') || 'undeclared')}. Data classes: ${esc(rb.data_classes.join(', '))}.</p>
${table(
  ['scope', 'in plain language'],
  rb.access.map((a) => [a.scope, a.plain]),
  'No scope.',
)}
<h2>Retention</h2>
<p>${esc(rb.retention.statement)}</p>
<h2>Where data goes</h2>
<p>${esc(rb.residency.statement)}</p>
<h2>Data-subject requests</h2>
${list(rb.data_subject_requests)}
<h2>Approvals</h2>
${table(
  ['when', 'action', 'by', 'reason'],
  rb.approvals.map((a) => [a.at, a.action, a.actor, a.reason]),
  'No approval recorded.',
)}
<h2>Incidents</h2>
${table(
  ['id', 'rule', 'severity', 'state', 'opened', 'summary'],
  rb.incidents.map((i) => [i.id, i.rule, i.severity, i.state, i.opened_at, i.summary]),
  'No incident recorded.',
)}
</body></html>
`;
}
