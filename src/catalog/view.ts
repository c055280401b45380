/**
 * How an app is shown outside: the JSON of the admin API and `--json` (snake_case, like the rest of the
 * API), and the inventory's CSV columns.
 */
import { riskLevelOf, type App, type HistoryEntry } from './apps.js';

export interface AppView {
  readonly id: string;
  readonly client_id: string;
  readonly name: string;
  readonly owner: string;
  readonly state: string;
  readonly scopes: readonly string[];
  /** The plan's consent purpose (the approved plan's, for an approved app); null when it names none. */
  readonly consent_purpose: string | null;
  readonly redirect_uris: readonly string[];
  readonly data_classes: readonly string[];
  readonly risk_score: number | null;
  readonly risk: string | null;
  readonly constraints: App['constraints'] | null;
  readonly requested_by: string;
  readonly approved_by: string | null;
  readonly approved_at: string | null;
  readonly approved_until: string | null;
  readonly review_reason: string | null;
  /** What the maker should know about the plan that no rule decides (see AdmissionRecord.warnings). */
  readonly warnings: readonly string[];
  readonly admission: App['admission'] | null;
  readonly pending_change: App['pending'] | null;
  readonly scan: App['scan'] | null;
  /** The digest of the bundle Gatehouse scanned, and of the one the approval covers. */
  readonly bundle_digest: string | null;
  readonly approved_digest: string | null;
  readonly last_used_at: string | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly manifest: App['manifest'];
  readonly history?: readonly HistoryEntry[];
}

export function viewOf(app: App, history?: readonly HistoryEntry[]): AppView {
  const uris = app.manifest.redirect_uris;
  const purpose = app.manifest.consent_purpose;
  return {
    id: app.id,
    client_id: app.clientId,
    name: app.name,
    owner: app.owner,
    state: app.status,
    scopes: app.scopes,
    consent_purpose: typeof purpose === 'string' ? purpose : null,
    redirect_uris: Array.isArray(uris) ? uris.filter((u): u is string => typeof u === 'string') : [],
    data_classes: app.dataClasses,
    risk_score: app.riskScore ?? null,
    risk: riskLevelOf(app.riskScore) ?? null,
    constraints: app.constraints ?? null,
    requested_by: app.requestedBy,
    approved_by: app.approvedBy ?? null,
    approved_at: app.approvedAt ?? null,
    approved_until: app.approvedUntil ?? null,
    review_reason: app.reviewReason ?? null,
    warnings: app.admission?.warnings ?? [],
    admission: app.admission ?? null,
    pending_change: app.pending ?? null,
    scan: app.scan ?? null,
    bundle_digest: app.bundleDigest ?? null,
    approved_digest: app.approvedDigest ?? null,
    last_used_at: app.lastUsedAt ?? null,
    created_at: app.createdAt,
    updated_at: app.updatedAt,
    manifest: app.manifest,
    ...(history ? { history } : {}),
  };
}

const csvColumns = [
  'id',
  'name',
  'owner',
  'state',
  'scopes',
  'data_classes',
  'risk_score',
  'risk',
  'approved_by',
  'approved_until',
  'last_used_at',
  'created_at',
] as const;

/** RFC 4180 CSV of the inventory, one app a line; lists are space-separated within their cell. */
export function inventoryCsv(apps: readonly App[]): string {
  const lines = [csvColumns.join(',')];
  for (const app of apps) {
    const view = viewOf(app);
    lines.push(
      csvColumns
        .map((column) => {
          const value = view[column];
          return csvCell(Array.isArray(value) ? value.join(' ') : value === null ? '' : String(value));
        })
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Quoted when needed; a leading =, +, - or @ is prefixed so a spreadsheet never runs it as a formula. */
function csvCell(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
