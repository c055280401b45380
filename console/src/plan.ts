/** The plan vocabulary the server answers at GET /admin/v1/admission. */
export interface Vocabulary {
  scopes: Record<string, { object: string; fields: string[] }>;
  data_classes: string[];
  consent_purposes: string[];
}

export interface Verdict {
  decision: 'approve' | 'review' | 'deny' | 'invalid';
  rules: { id: string; effect: string; reason: string }[];
  errors: string[];
  risk_score: number | null;
  data_classes: string[];
  policy_version: string;
}

export interface AppView {
  id: string;
  client_id: string;
  name: string;
  owner: string;
  state: string;
  scopes: string[];
  data_classes: string[];
  risk: string | null;
  risk_score: number | null;
  review_reason: string | null;
  requested_by: string;
  approved_by: string | null;
  warnings: string[];
  admission: { decision: string; rules: { id: string; effect: string; reason: string }[] } | null;
  pending_change: { manifest?: Record<string, unknown>; scopes?: string[] } | null;
  constraints: { daily_quota: number; requests_per_minute: number } | null;
  last_used_at: string | null;
  manifest: Record<string, unknown>;
  /** The summary of Gatehouse's own scan of the app's last bundle, and that bundle's digest. */
  scan?: ScanSummary | null;
  bundle_digest?: string | null;
  history?: {
    at: string;
    action: string;
    from_state: string;
    to_state: string;
    actor: string;
    reason: string;
  }[];
}

/**
 * Narrower scopes that would do: same verb and object, a strict subset of the fields. A maker asking
 * for `read:contact.pii` to send e-mails is told that `read:contact.reach` gives e-mail and phone only.
 */
export function narrowerScopes(scope: string, vocabulary: Vocabulary): { scope: string; fields: string[] }[] {
  const held = vocabulary.scopes[scope];
  if (!held) return [];
  const verb = scope.split(':')[0];
  return Object.entries(vocabulary.scopes)
    .filter(
      ([other, set]) =>
        other !== scope &&
        other.split(':')[0] === verb &&
        set.object === held.object &&
        set.fields.length < held.fields.length &&
        set.fields.every((field) => held.fields.includes(field)),
    )
    .map(([other, set]) => ({ scope: other, fields: set.fields }));
}

/** What the server's scan of a bundle found (src/scan `ScanSummary`). */
export interface ScanSummary {
  critical: number;
  high: number;
  medium: number;
  low: number;
  bypass: boolean;
  unpinned: number;
  lockfile_missing: boolean;
  unscanned: number;
}

/** The media type the bundle upload takes for a file, by its name; undefined for anything else. */
export function bundleMediaType(fileName: string): string | undefined {
  const name = fileName.toLowerCase();
  if (name.endsWith('.zip')) return 'application/zip';
  if (name.endsWith('.tgz') || name.endsWith('.tar.gz')) return 'application/gzip';
  return undefined;
}
