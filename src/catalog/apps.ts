import { InputError } from '../errors/index.js';
import { enrichManifest, ManifestInvalid, parseManifest } from '../policy/index.js';
import type { ScanSummary } from '../scan/index.js';
import type { Db } from '../store/index.js';
import { catalogDb, type CatalogDb, type CatalogTables } from './tables.js';
import { normaliseEmail } from './identity.js';

export const appStatuses = ['draft', 'in_review', 'approved', 'suspended', 'retired'] as const;
export type AppStatus = (typeof appStatuses)[number];

/** What an approval gives an app at run time, derived from its plan (src/catalog/constraints.ts). */
export interface RuntimeConstraints {
  /** Requests per UTC day, all users of the app together. */
  readonly daily_quota: number;
  /** Requests per minute, all users of the app together. */
  readonly requests_per_minute: number;
}

/** One rule of an admission decision, as the policy named it. */
export interface DecidingRule {
  readonly id: string;
  readonly effect: 'approve' | 'review' | 'deny';
  readonly reason: string;
}

/** The admission policy's last word on the app's plan. */
export interface AdmissionRecord {
  readonly decision: 'approve' | 'review' | 'deny';
  readonly rules: readonly DecidingRule[];
  readonly policy_version: string;
  readonly risk_score: number;
  readonly data_classes: readonly string[];
  readonly decided_at: string;
  /** What the maker should know that no rule decides (a plan that will see no contact); absent: none. */
  readonly warnings?: readonly string[];
}

/** A plan change of an approved app waiting for a reviewer; the approved plan stays in force meanwhile. */
export interface PendingChange {
  readonly manifest: Readonly<Record<string, unknown>>;
  readonly scopes: readonly string[];
  readonly requested_by: string;
  readonly requested_at: string;
  readonly admission: AdmissionRecord;
}

export interface App {
  id: string;
  clientId: string;
  name: string;
  owner: string;
  /**
   * The state in force: an approval past `approvedUntil` reads as `in_review` (the app is back in the
   * reviewer queue) even before the catalog records the lapse, so tokens stop at once.
   */
  status: AppStatus;
  /** The approved scopes: the most a token of the app can carry. */
  scopes: readonly string[];
  manifest: Readonly<Record<string, unknown>>;
  createdAt: string;
  updatedAt: string;
  /** Who registered the app (the owner, or the admin who registered it for them). */
  requestedBy: string;
  approvedBy?: string;
  approvedAt?: string;
  approvedUntil?: string;
  /** Why the app is where it is: the reviewer's, the policy's or the suspender's last word. */
  reviewReason?: string;
  admission?: AdmissionRecord;
  /** Every data class the plan touches (declared ∪ classes of the fields its scopes open). */
  dataClasses: readonly string[];
  riskScore?: number;
  /** The runtime limits of the approval (for the limits module); absent until approved. */
  constraints?: RuntimeConstraints;
  pending?: PendingChange;
  /** The summary of the last scan of the app's bundle; the admission policy reads it. */
  scan?: ScanSummary;
  /** `sha256:…` of the bundle Gatehouse scanned for `scan`. */
  bundleDigest?: string;
  /** `sha256:…` of the bundle the approval in force covers (the deploy gate's reference). */
  approvedDigest?: string;
  /** The last allowed CRM request of the app in the audit trail, once the catalog has read it. */
  lastUsedAt?: string;
  unusedNotifiedAt?: string;
}

export const riskLevels = ['low', 'medium', 'high'] as const;
export type RiskLevel = (typeof riskLevels)[number];
/** Risk scores (0–100) by level: low below 25, medium 25–49, high 50 and above. */
const riskBounds: Readonly<Record<RiskLevel, readonly [number, number]>> = {
  low: [0, 24],
  medium: [25, 49],
  high: [50, 100],
};

export function riskLevelOf(score: number | undefined): RiskLevel | undefined {
  if (score === undefined) return undefined;
  return riskLevels.find((level) => score >= riskBounds[level][0] && score <= riskBounds[level][1]);
}

/** The inventory's filters; every one optional, all of them must hold. */
export interface AppQuery {
  owner?: string;
  state?: AppStatus;
  /** Apps whose plan touches this data class. */
  dataClass?: string;
  risk?: RiskLevel;
  /** Apps with no allowed CRM request for this many days (counted from approval when never used). */
  unusedDays?: number;
  /** Apps a reviewer must look at: in review, or approved with a plan change pending. */
  needsReview?: boolean;
  cursor?: string;
  /** 1..500, default 50. */
  limit?: number;
}

export interface HistoryEntry {
  readonly seq: number;
  readonly at: string;
  readonly action: string;
  readonly from_state: string;
  readonly to_state: string;
  readonly actor: string;
  readonly reason: string;
}

export interface Catalog {
  findAppByClientId(clientId: string): Promise<App | undefined>;
  findApp(id: string): Promise<App | undefined>;
  listApps(): Promise<App[]>;
  /** A page of the inventory, ordered by id. InputError for a cursor this catalog did not make. */
  queryApps(query: AppQuery): Promise<{ records: App[]; next_cursor?: string }>;
  /** The app's lifecycle changes, oldest first. */
  history(appId: string): Promise<HistoryEntry[]>;
  /** Inserts the demo apps once; existing apps are left as they are (the console gains new scopes). */
  ensureDemoApps(now?: Date): Promise<void>;
}

export interface CatalogOptions {
  /** The clock approvals lapse by; tests move it. */
  now?: () => Date;
}

/** The three clients every demo starts with (CONTRACT.md "Demo client ids"). */
export const demoApps: ReadonlyArray<
  Pick<App, 'id' | 'clientId' | 'name' | 'owner' | 'scopes' | 'manifest'>
> = [
  {
    id: 'call-notes',
    clientId: 'call-notes',
    name: 'call-notes',
    owner: 'alice@example.com',
    scopes: [
      'read:account.basic',
      'read:contact.basic',
      'read:contact.reach',
      'read:note.basic',
      'write:contact.note',
    ],
    manifest: {
      name: 'call-notes',
      owner: 'alice@example.com',
      purpose: 'log call notes on my accounts',
      scopes: [
        'read:account.basic',
        'read:contact.basic',
        'read:contact.reach',
        'read:note.basic',
        'write:contact.note',
      ],
      data_classes: ['internal', 'pii'],
      retention_days: 30,
      expected_users: 12,
      telemetry: true,
      redirect_uris: ['http://localhost:5173/callback'],
      keeps_copies: { where: 'gatehouse' },
    },
  },
  {
    id: 'pipeline-dashboard',
    clientId: 'pipeline-dashboard',
    name: 'pipeline-dashboard',
    owner: 'bob@example.com',
    scopes: [
      'read:account.basic',
      'read:opportunity.basic',
      'read:opportunity.financial',
      'read:opportunity.aggregate',
    ],
    manifest: {
      name: 'pipeline-dashboard',
      owner: 'bob@example.com',
      purpose: 'show the sales pipeline of my territory',
      scopes: [
        'read:account.basic',
        'read:opportunity.basic',
        'read:opportunity.financial',
        'read:opportunity.aggregate',
      ],
      data_classes: ['internal', 'financial'],
      retention_days: 90,
      expected_users: 25,
      telemetry: true,
      redirect_uris: ['http://localhost:5174/callback'],
    },
  },
  {
    id: 'console',
    clientId: 'console',
    name: 'Gatehouse console',
    owner: 'dave@example.com',
    scopes: ['audit:read', 'admin', 'review', 'maker'],
    manifest: {
      name: 'console',
      owner: 'dave@example.com',
      purpose: 'administer Gatehouse',
      scopes: ['audit:read', 'admin', 'review', 'maker'],
      data_classes: ['internal'],
      retention_days: 365,
      expected_users: 5,
      telemetry: true,
      redirect_uris: ['http://127.0.0.1:8080/console/callback'],
    },
  },
];

const defaultPage = 50;
const maxPage = 500;
const day = 86_400_000;

export function createCatalog(db: Db | CatalogDb, options: CatalogOptions = {}): Catalog {
  const cdb = catalogDb(db);
  const now = options.now ?? (() => new Date());
  const select = () => cdb.selectFrom('apps').selectAll();
  const read = (row: AppRow) => toApp(row, now());
  return {
    async findAppByClientId(clientId) {
      const row = await select().where('client_id', '=', clientId).executeTakeFirst();
      return row && read(row);
    },
    async findApp(id) {
      const row = await select().where('id', '=', id).executeTakeFirst();
      return row && read(row);
    },
    async listApps() {
      return (await select().orderBy('id').execute()).map(read);
    },
    async queryApps(query) {
      const limit = query.limit ?? defaultPage;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxPage) {
        throw new InputError(`limit must be between 1 and ${maxPage}`, { parameter: 'limit' });
      }
      const at = now();
      const nowText = at.toISOString();
      let q = select();
      if (query.owner !== undefined) q = q.where('owner', '=', normaliseEmail(query.owner));
      if (query.state === 'approved') {
        q = q
          .where('status', '=', 'approved')
          .where((eb) => eb.or([eb('approved_until', 'is', null), eb('approved_until', '>', nowText)]));
      } else if (query.state === 'in_review') {
        q = q.where((eb) =>
          eb.or([
            eb('status', '=', 'in_review'),
            eb.and([eb('status', '=', 'approved'), eb('approved_until', '<=', nowText)]),
          ]),
        );
      } else if (query.state !== undefined) q = q.where('status', '=', query.state);
      if (query.needsReview) {
        q = q.where((eb) =>
          eb.or([
            eb('status', '=', 'in_review'),
            eb.and([eb('status', '=', 'approved'), eb('approved_until', '<=', nowText)]),
            eb.and([eb('status', '=', 'approved'), eb('pending', 'is not', null)]),
          ]),
        );
      }
      if (query.dataClass !== undefined) q = q.where('data_classes', 'like', `%|${query.dataClass}|%`);
      if (query.risk !== undefined) {
        const [low, high] = riskBounds[query.risk];
        q = q.where('risk_score', '>=', low).where('risk_score', '<=', high);
      }
      if (query.unusedDays !== undefined) {
        const cutoff = new Date(at.getTime() - query.unusedDays * day).toISOString();
        q = q.where((eb) => eb(eb.fn.coalesce('last_used_at', 'approved_at', 'created_at'), '<', cutoff));
      }
      if (query.cursor !== undefined) q = q.where('id', '>', decodeCursor(query.cursor));
      const rows = await q
        .orderBy('id')
        .limit(limit + 1)
        .execute();
      const records = rows.slice(0, limit).map((row) => toApp(row, at));
      const last = records.at(-1);
      return rows.length > limit && last ? { records, next_cursor: encodeCursor(last.id) } : { records };
    },
    async history(appId) {
      return cdb
        .selectFrom('app_history')
        .select(['seq', 'at', 'action', 'from_state', 'to_state', 'actor', 'reason'])
        .where('app_id', '=', appId)
        .orderBy('seq')
        .execute();
    },
    async ensureDemoApps(at = new Date()) {
      const iso = at.toISOString();
      await cdb
        .insertInto('apps')
        .values(
          demoApps.map((app) => ({
            ...planFacts(app.manifest),
            id: app.id,
            client_id: app.clientId,
            name: app.name,
            owner: app.owner,
            status: 'approved',
            scopes: JSON.stringify(app.scopes),
            manifest: JSON.stringify(app.manifest),
            created_at: iso,
            updated_at: iso,
            requested_by: app.owner,
            approved_by: 'demo',
            approved_at: iso,
          })),
        )
        .onConflict((c) => c.column('id').doNothing())
        .execute();
      // The console's scopes are the platform's own: a data dir made before `maker` existed gains it.
      const consoleApp = demoApps.find((app) => app.id === 'console');
      const stored = await select().where('id', '=', 'console').executeTakeFirst();
      if (consoleApp && stored) {
        const held = JSON.parse(stored.scopes) as string[];
        const missing = consoleApp.scopes.filter((scope) => !held.includes(scope));
        if (missing.length > 0) {
          await cdb
            .updateTable('apps')
            .set({ scopes: JSON.stringify([...held, ...missing]) })
            .where('id', '=', 'console')
            .execute();
        }
      }
    },
  };
}

type AppRow = CatalogTables['apps'];

/** Data classes and risk of a plan, for the inventory's filters; the console's plan has no CRM scopes. */
function planFacts(manifest: Readonly<Record<string, unknown>>): {
  data_classes: string;
  risk_score: number | null;
} {
  try {
    const enrichment = enrichManifest(parseManifest(manifest));
    return { data_classes: delimited(enrichment.data_classes), risk_score: enrichment.risk_score };
  } catch (error) {
    if (!(error instanceof ManifestInvalid)) throw error;
    const declared = Array.isArray(manifest.data_classes) ? (manifest.data_classes as string[]) : [];
    return { data_classes: delimited(declared), risk_score: null };
  }
}

/** `|a|b|`: one delimited text column that a portable `like '%|a|%'` can filter on. */
export function delimited(values: readonly string[]): string {
  return `|${[...values].join('|')}|`;
}

function undelimited(text: string | null): string[] {
  return text ? text.split('|').filter(Boolean) : [];
}

const json = <T>(text: string | null): T | undefined => (text === null ? undefined : (JSON.parse(text) as T));
const optional = (value: string | null) => value ?? undefined;

export function toApp(row: AppRow, now: Date): App {
  const lapsed =
    row.status === 'approved' && row.approved_until !== null && row.approved_until <= now.toISOString();
  const app: App = {
    id: row.id,
    clientId: row.client_id,
    name: row.name,
    owner: row.owner,
    status: lapsed ? 'in_review' : (row.status as AppStatus),
    scopes: JSON.parse(row.scopes) as string[],
    manifest: JSON.parse(row.manifest) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    requestedBy: row.requested_by ?? row.owner,
    dataClasses: undelimited(row.data_classes),
  };
  const extra: Partial<App> = {
    approvedBy: optional(row.approved_by),
    approvedAt: optional(row.approved_at),
    approvedUntil: optional(row.approved_until),
    reviewReason: lapsed ? `the approval lapsed on ${row.approved_until}` : optional(row.review_reason),
    admission: json<AdmissionRecord>(row.admission),
    riskScore: row.risk_score ?? undefined,
    constraints: json<RuntimeConstraints>(row.constraints),
    pending: json<PendingChange>(row.pending),
    scan: json<ScanSummary>(row.scan),
    bundleDigest: optional(row.bundle_digest),
    approvedDigest: optional(row.approved_digest),
    lastUsedAt: optional(row.last_used_at),
    unusedNotifiedAt: optional(row.unused_notified_at),
  };
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) Object.assign(app, { [key]: value });
  }
  return app;
}

function encodeCursor(id: string): string {
  return Buffer.from(`a1:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  // Attacker-controlled: only a cursor of this shape is accepted, and only as a bound on `id`.
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  if (!text.startsWith('a1:')) throw new InputError('cursor is not valid', { parameter: 'cursor' });
  return text.slice(3);
}
