/**
 * What apps actually do, from the audit trail: when each app last made an allowed CRM request (for the
 * unused-app check), and the narrowest scopes that would have served every request it made (least
 * privilege from usage).
 */
import type { AuditEvent, AuditEventQuery, AuditEventRecord } from '../audit/index.js';
import { InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { catalogDb } from './tables.js';

/** The part of the audit log this file reads. */
export interface AuditReader {
  events(q: AuditEventQuery): Promise<{ records: AuditEventRecord[]; next_cursor?: string }>;
}

export interface FieldsetLike {
  readonly object: string;
  readonly fields: readonly string[];
}

const page = 1000;
const usageCursor = 'usage';
const writes: ReadonlySet<string> = new Set(['crm.create', 'crm.update', 'crm.delete']);

/** An allowed request of an app to the CRM: what counts as using it (a write's intent is not; its outcome is). */
function isUse(event: AuditEvent): boolean {
  return (
    event.outcome === 'allow' &&
    event.action.startsWith('crm.') &&
    !event.action.endsWith('.intent') &&
    event.app_id !== ''
  );
}

/**
 * Reads the audit events appended since the last call and moves each app's `last_used_at` forward.
 * Safe to run from several processes at once (times and the cursor only move forward). Answers how
 * many events it read.
 */
export async function refreshUsage(
  db: Db,
  log: AuditReader,
  onProgress?: (eventsRead: number) => void,
): Promise<number> {
  const cdb = catalogDb(db);
  const stored = await cdb
    .selectFrom('catalog_cursors')
    .select('position')
    .where('name', '=', usageCursor)
    .executeTakeFirst();
  let position = Number(stored?.position ?? 0);
  let read = 0;
  for (;;) {
    const answer = await log.events({
      ...(position > 0 ? { cursor: String(position - 1) } : {}),
      limit: page,
    });
    if (answer.records.length === 0) break;
    const lastUse = new Map<string, string>();
    for (const { event } of answer.records) {
      if (!isUse(event)) continue;
      const known = lastUse.get(event.app_id);
      if (known === undefined || known < event.timestamp) lastUse.set(event.app_id, event.timestamp);
    }
    for (const [appId, at] of lastUse) {
      await cdb
        .updateTable('apps')
        .set({ last_used_at: at })
        .where('id', '=', appId)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
        .execute();
    }
    position = (answer.records.at(-1) as AuditEventRecord).index + 1;
    read += answer.records.length;
    await cdb
      .insertInto('catalog_cursors')
      .values({ name: usageCursor, position })
      .onConflict((c) =>
        c.column('name').doUpdateSet({ position }).where('catalog_cursors.position', '<', position),
      )
      .execute();
    onProgress?.(read);
    if (answer.next_cursor === undefined) break;
  }
  return read;
}

/** `30d`, `12h` or an ISO 8601 time: the start of a look-back window. InputError otherwise. */
export function parseSince(text: string, now: Date): Date {
  const relative = /^([1-9][0-9]{0,4})([dh])$/.exec(text.trim());
  if (relative) {
    const hours = Number(relative[1]) * (relative[2] === 'd' ? 24 : 1);
    return new Date(now.getTime() - hours * 3_600_000);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return new Date(text);
  throw new InputError('since must look like 30d, 12h or an ISO 8601 time', { parameter: 'since' });
}

/** `30d` (or `30`) as a number of days. InputError otherwise. */
export function parseDays(text: string): number {
  const match = /^([1-9][0-9]{0,4})d?$/.exec(text.trim());
  if (!match) throw new InputError('give a number of days such as 30d', { parameter: 'unused' });
  return Number(match[1]);
}

/** Every event of one app appended since `since`, oldest first, page by page. */
export async function* appEvents(log: AuditReader, appId: string, since: Date): AsyncGenerator<AuditEvent> {
  let cursor: string | undefined;
  do {
    const answer = await log.events({ app_id: appId, since: since.toISOString(), cursor, limit: page });
    for (const record of answer.records) yield record.event;
    cursor = answer.next_cursor;
  } while (cursor !== undefined);
}

export interface ObjectUsage {
  readonly object: string;
  readonly access: 'read' | 'write';
  /** Fields the app read or wrote. */
  readonly used_fields: readonly string[];
  /** Fields its scopes open for this object and access that it never used. */
  readonly unused_fields: readonly string[];
}

export interface ScopeSuggestion {
  readonly app_id: string;
  readonly since: string;
  /** Allowed CRM requests the suggestion rests on. */
  readonly requests: number;
  readonly held: readonly string[];
  /** The narrowest held scopes that cover every field the app used. */
  readonly suggested: readonly string[];
  /** Held scopes the app would lose: never needed in the window. */
  readonly drop: readonly string[];
  readonly usage: readonly ObjectUsage[];
  /** Fields the app used that no held scope covers (only after a plan narrowed mid-window). */
  readonly uncovered: readonly string[];
}

/**
 * The narrowest subset of `held` that covers what the events show the app used: per object and access,
 * held scopes are picked greedily by how many used fields they cover, the narrower first on a tie.
 * Requests without field names (aggregates, deletes) keep the scopes they were granted with.
 */
export function suggestScopes(
  app: { id: string; scopes: readonly string[] },
  events: Iterable<AuditEvent>,
  fieldsets: Readonly<Record<string, FieldsetLike>>,
  since: Date,
): ScopeSuggestion {
  const used = new Map<string, Set<string>>();
  const keep = new Set<string>();
  let requests = 0;
  for (const event of events) {
    if (!isUse(event) || event.app_id !== app.id) continue;
    requests += 1;
    const access = writes.has(event.action) ? 'write' : 'read';
    const fields = event.fields ? event.fields.split(',').filter(Boolean) : [];
    if (fields.length === 0) {
      for (const scope of event.scope.split(' ')) if (app.scopes.includes(scope)) keep.add(scope);
      continue;
    }
    const key = `${access}:${event.resource_type}`;
    const bucket = used.get(key) ?? new Set<string>();
    for (const field of fields) bucket.add(field);
    used.set(key, bucket);
  }

  const suggested = new Set(keep);
  const uncovered: string[] = [];
  const usage: ObjectUsage[] = [];
  const scopesFor = (access: string, object: string) =>
    app.scopes.filter((s) => s.startsWith(`${access}:`) && fieldsets[s]?.object === object);
  for (const [key, fields] of [...used].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [access = '', object = ''] = key.split(':');
    const candidates = scopesFor(access, object);
    const open = new Set(fields);
    while (open.size > 0) {
      let best: { scope: string; covers: number; size: number } | undefined;
      for (const scope of candidates) {
        const set = fieldsets[scope]?.fields ?? [];
        const covers = set.filter((f) => open.has(f)).length;
        if (covers === 0) continue;
        if (
          !best ||
          covers > best.covers ||
          (covers === best.covers &&
            (set.length < best.size || (set.length === best.size && scope < best.scope)))
        ) {
          best = { scope, covers, size: set.length };
        }
      }
      if (!best) {
        uncovered.push(...[...open].map((f) => `${object}.${f}`));
        break;
      }
      suggested.add(best.scope);
      for (const f of fieldsets[best.scope]?.fields ?? []) open.delete(f);
    }
    const opened = new Set(candidates.flatMap((s) => fieldsets[s]?.fields ?? []));
    usage.push({
      object,
      access: access as 'read' | 'write',
      used_fields: [...fields].sort(),
      unused_fields: [...opened].filter((f) => !fields.has(f)).sort(),
    });
  }
  const ordered = app.scopes.filter((s) => suggested.has(s));
  return {
    app_id: app.id,
    since: since.toISOString(),
    requests,
    held: [...app.scopes],
    suggested: ordered,
    drop: app.scopes.filter((s) => !suggested.has(s)),
    usage,
    uncovered: uncovered.sort(),
  };
}
