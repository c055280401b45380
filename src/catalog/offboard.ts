/**
 * Offboarding: when an owner leaves, their apps are suspended (or handed to a new owner), every token
 * of those apps and of the user is revoked, their secrets are removed, and their audit events are
 * archived as evidence bundles (events + inclusion proofs against a signed checkpoint) that anyone
 * holding the audit verifier key can check offline. Retiring one app does the same for that app.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildEvidenceBundle,
  verifyEvidenceBundle,
  type AuditLog,
  type EvidenceBundle,
  type EvidenceReport,
} from '../audit/index.js';
import { InputError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { App } from './apps.js';
import { normaliseEmail } from './identity.js';
import type { Actor, Lifecycle } from './lifecycle.js';

/** Where an app's secrets live in the secret store; whoever stores one for an app uses this prefix. */
export function appSecretPrefix(appId: string): string {
  return `apps/${appId}/`;
}

/** Where a user's secrets live: keyed by a hash of the email, which the store's names cannot hold. */
export function userSecretPrefix(email: string): string {
  return `users/${createHash('sha256').update(normaliseEmail(email)).digest('hex').slice(0, 32)}/`;
}

export interface OffboardDeps {
  readonly lifecycle: Lifecycle;
  readonly log: AuditLog;
  readonly secrets: SecretStore;
  /** Archives are written under `<dataDir>/archives`. */
  readonly dataDir: string;
  revokeTokens(
    target: { appId?: string; userId?: string },
    options: { reason: string; actor: string; permanent?: boolean },
  ): Promise<unknown>;
  readonly now?: () => Date;
  /** Audit events scanned so far, while the user's own events are collected. */
  readonly onProgress?: (scanned: number) => void;
}

export const archiveFormat = 'gatehouse-archive';

/** One file: evidence bundles of at most 10,000 events each, all against the same verifier key. */
export interface Archive {
  readonly format: typeof archiveFormat;
  readonly version: 1;
  readonly subject: string;
  readonly created_at: string;
  readonly verifier_key: string;
  readonly bundles: readonly EvidenceBundle[];
}

export interface ArchiveSummary {
  readonly file: string;
  readonly events: number;
  readonly bundles: number;
  /** The size of the signed tree the last bundle's proofs lead to. */
  readonly checkpoint_size: number;
}

export interface OffboardReport {
  readonly user: string;
  readonly apps: ReadonlyArray<{ app_id: string; action: 'suspended' | 'transferred'; to?: string }>;
  readonly tokens_revoked: { readonly apps: readonly string[]; readonly user: string };
  readonly secrets_removed: readonly string[];
  readonly archive: ArchiveSummary;
}

const bundleEvents = 10_000;
const page = 1000;
const email = /^[^\s@]+@[^\s@]+$/;

export async function offboardUser(
  deps: OffboardDeps,
  user: string,
  options: { transferTo?: string; by: Actor; reason: string },
): Promise<OffboardReport> {
  const who = normaliseEmail(user);
  if (!email.test(who)) throw new InputError('the user to offboard must be an email address');
  const to = options.transferTo === undefined ? undefined : normaliseEmail(options.transferTo);
  if (to !== undefined && (!email.test(to) || to === who)) {
    throw new InputError('--transfer-to must be the email address of someone else');
  }
  const reason = `offboarding ${who}: ${options.reason}`;
  const step = { by: options.by, reason };
  const owned = await ownedApps(deps.lifecycle, who);
  const apps: Array<{ app_id: string; action: 'suspended' | 'transferred'; to?: string }> = [];
  for (const app of owned) {
    if (to !== undefined) {
      await deps.lifecycle.transfer(app.id, to, step);
      await deps.revokeTokens({ appId: app.id }, { reason, actor: options.by.id });
      apps.push({ app_id: app.id, action: 'transferred', to });
    } else {
      await deps.lifecycle.suspendApp(app.id, step);
      apps.push({ app_id: app.id, action: 'suspended' });
    }
  }
  // A leaver's sign-ins stay refused, whatever the IdP still issues for them.
  await deps.revokeTokens({ userId: who }, { reason, actor: options.by.id, permanent: true });
  const prefixes = [userSecretPrefix(who), ...owned.map((app) => appSecretPrefix(app.id))];
  const removed = await removeSecrets(deps.secrets, prefixes);
  const appIds = new Set(owned.map((app) => app.id));
  await deps.log.append({
    timestamp: (deps.now?.() ?? new Date()).toISOString(),
    actor_id: options.by.id,
    actor_role: options.by.role,
    app_id: '',
    action: 'user.offboard',
    resource_type: 'user',
    resource_id: who.slice(0, 64),
    scope: '',
    request_id: `offboard-${randomBytes(9).toString('base64url')}`,
    trace_id: '',
    outcome: 'allow',
    reason:
      `${apps.length} apps ${to ? `transferred to ${to}` : 'suspended'}; tokens revoked; ${removed.length} secrets removed: ${options.reason}`.slice(
        0,
        500,
      ),
  });
  const indexes = await collect(
    deps,
    (event) => normaliseEmail(event.actor_id) === who || appIds.has(event.app_id),
  );
  const archive = await writeArchive(deps, indexes, `offboarding of ${who}`, `offboard-${slug(who)}`);
  return {
    user: who,
    apps,
    tokens_revoked: { apps: [...appIds], user: who },
    secrets_removed: removed,
    archive,
  };
}

/** What an offboarding would do, read without changing anything (the console's wizard shows it first). */
export interface OffboardPreview {
  readonly user: string;
  readonly apps: ReadonlyArray<{
    app_id: string;
    name: string;
    state: string;
    action: 'suspend' | 'transfer';
    to?: string;
  }>;
  /** Apps holding a sign-in on the user's behalf: every one of their tokens ends. */
  readonly grants: ReadonlyArray<{ app_id: string; scope: string; last_used_at: string }>;
  readonly tokens_revoked: { readonly apps: readonly string[]; readonly user: string };
  readonly secrets: number;
}

export async function previewOffboard(
  deps: Pick<OffboardDeps, 'lifecycle' | 'secrets'> & {
    grantsOf(email: string): Promise<readonly { app_id: string; scope: string; last_used_at: number }[]>;
  },
  user: string,
  options: { transferTo?: string },
): Promise<OffboardPreview> {
  const who = normaliseEmail(user);
  if (!email.test(who)) throw new InputError('the user to offboard must be an email address');
  const to = options.transferTo === undefined ? undefined : normaliseEmail(options.transferTo);
  if (to !== undefined && (!email.test(to) || to === who)) {
    throw new InputError('--transfer-to must be the email address of someone else');
  }
  const owned = await ownedApps(deps.lifecycle, who);
  let secrets = 0;
  for (const prefix of [userSecretPrefix(who), ...owned.map((app) => appSecretPrefix(app.id))]) {
    secrets += (await deps.secrets.list(prefix)).length;
  }
  const grants = await deps.grantsOf(who);
  return {
    user: who,
    apps: owned.map((app) => ({
      app_id: app.id,
      name: app.name,
      state: app.status,
      ...(to === undefined ? { action: 'suspend' as const } : { action: 'transfer' as const, to }),
    })),
    grants: grants.map((g) => ({
      app_id: g.app_id,
      scope: g.scope,
      last_used_at: new Date(g.last_used_at * 1000).toISOString(),
    })),
    tokens_revoked: { apps: owned.map((app) => app.id), user: who },
    secrets,
  };
}

export interface RetireReport {
  readonly app: App;
  readonly secrets_removed: readonly string[];
  readonly archive: ArchiveSummary;
}

/** Retires one app (its tokens are revoked), removes its secrets and archives its audit events. */
export async function retireApp(
  deps: Omit<OffboardDeps, 'revokeTokens'>,
  appId: string,
  options: { by: Actor; reason: string; requestId?: string },
): Promise<RetireReport> {
  const app = await deps.lifecycle.retire(appId, options);
  const removed = await removeSecrets(deps.secrets, [appSecretPrefix(app.id)]);
  const indexes: number[] = [];
  let cursor: string | undefined;
  do {
    const answer = await deps.log.events({ app_id: app.id, cursor, limit: page });
    for (const record of answer.records) indexes.push(record.index);
    cursor = answer.next_cursor;
  } while (cursor !== undefined);
  const archive = await writeArchive(deps, indexes, `retirement of ${app.id}`, `retire-${slug(app.id)}`);
  return { app, secrets_removed: removed, archive };
}

/** Checks every bundle of an archive with the trusted verifier key; the first failure decides. */
export function verifyArchive(archive: unknown, verifierKey: string): EvidenceReport & { bundles?: number } {
  // Attacker-controlled: the whole file. Its shape first; each bundle is checked by the audit module.
  if (typeof archive !== 'object' || archive === null || Array.isArray(archive)) {
    return { ok: false, code: 'BUNDLE_MALFORMED', problem: 'the archive is not a JSON object' };
  }
  const a = archive as Record<string, unknown>;
  if (a.format !== archiveFormat || a.version !== 1 || !Array.isArray(a.bundles)) {
    return { ok: false, code: 'BUNDLE_MALFORMED', problem: 'not a Gatehouse archive (format or version)' };
  }
  let events = 0;
  let size = 0;
  const indexes: number[] = [];
  for (const bundle of a.bundles as unknown[]) {
    const report = verifyEvidenceBundle(bundle, verifierKey);
    if (!report.ok) return report;
    events += report.events;
    size = Math.max(size, report.size);
    indexes.push(...report.indexes);
  }
  return { ok: true, size, events, indexes, bundles: a.bundles.length };
}

/** Reads an archive file; InputError when it is not JSON. */
export function readArchive(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (cause) {
    throw new InputError(`cannot read the archive ${file}: ${(cause as Error).message.split('\n')[0]}`);
  }
}

async function ownedApps(lifecycle: Lifecycle, owner: string): Promise<App[]> {
  const apps: App[] = [];
  let cursor: string | undefined;
  do {
    const answer = await lifecycle.catalog.queryApps({ owner, cursor, limit: 500 });
    apps.push(...answer.records.filter((app) => app.status !== 'retired'));
    cursor = answer.next_cursor;
  } while (cursor !== undefined);
  return apps;
}

async function removeSecrets(secrets: SecretStore, prefixes: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const prefix of prefixes) {
    for (const name of await secrets.list(prefix)) {
      await secrets.delete(name);
      removed.push(name);
    }
  }
  return removed;
}

/** Indexes of every event that `wanted` picks, read page by page from the start of the log. */
async function collect(
  deps: Pick<OffboardDeps, 'log' | 'onProgress'>,
  wanted: (event: { actor_id: string; app_id: string }) => boolean,
): Promise<number[]> {
  const indexes: number[] = [];
  let cursor: string | undefined;
  let scanned = 0;
  do {
    const answer = await deps.log.events({ cursor, limit: page });
    for (const record of answer.records) if (wanted(record.event)) indexes.push(record.index);
    scanned += answer.records.length;
    deps.onProgress?.(scanned);
    cursor = answer.next_cursor;
  } while (cursor !== undefined);
  return indexes;
}

async function writeArchive(
  deps: Pick<OffboardDeps, 'log' | 'dataDir' | 'now'>,
  indexes: readonly number[],
  subject: string,
  name: string,
): Promise<ArchiveSummary> {
  const now = deps.now ?? (() => new Date());
  const bundles: EvidenceBundle[] = [];
  const parts = Math.max(1, Math.ceil(indexes.length / bundleEvents));
  for (let part = 0; part < parts; part++) {
    const chunk = indexes.slice(part * bundleEvents, (part + 1) * bundleEvents);
    const label = parts > 1 ? `${subject} (part ${part + 1} of ${parts})` : subject;
    bundles.push(await buildEvidenceBundle(deps.log, chunk, { subject: label, now }));
  }
  const created = now();
  const archive: Archive = {
    format: archiveFormat,
    version: 1,
    subject,
    created_at: created.toISOString(),
    verifier_key: deps.log.verifierKey(),
    bundles,
  };
  const dir = join(deps.dataDir, 'archives');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = created.toISOString().replace(/[-:.]/g, '');
  const file = join(dir, `${name}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(archive, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  const report = verifyArchive(archive, deps.log.verifierKey());
  return {
    file,
    events: indexes.length,
    bundles: bundles.length,
    checkpoint_size: report.ok ? report.size : 0,
  };
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9.-]+/g, '_').slice(0, 64);
}
