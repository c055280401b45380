/**
 * Incidents in the store: a detection opens one, or updates the open (or acknowledged) incident of the
 * same rule, actor and app; its timeline and its evidence (audit indexes) grow with it.
 */
import { randomBytes } from 'node:crypto';
import { IncidentError, InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import type { ContainmentRecord } from './containment.js';
import { detectDb, type DetectDb, type DetectTables } from './tables.js';
import { severityRank, type Detection, type Severity } from './types.js';

export const incidentStates = ['open', 'acknowledged', 'closed'] as const;
export type IncidentState = (typeof incidentStates)[number];

export interface Incident {
  readonly id: string;
  readonly rule: string;
  readonly actor: string;
  readonly app_id: string;
  readonly severity: Severity;
  readonly state: IncidentState;
  readonly summary: string;
  readonly detections: number;
  readonly containment: readonly ContainmentRecord[];
  readonly playbook_version: string;
  readonly opened_at: string;
  readonly updated_at: string;
  readonly closed_at: string | null;
}

export interface TimelineEntry {
  readonly at: string;
  readonly kind: string;
  readonly by: string;
  readonly detail: string;
}

export interface IncidentDetail extends Incident {
  readonly timeline: readonly TimelineEntry[];
  /** Audit indexes of the matching events, ascending. */
  readonly evidence: readonly number[];
}

export interface IncidentQuery {
  state?: IncidentState;
  rule?: string;
  app_id?: string;
  cursor?: string;
  /** 1..200, default 50. */
  limit?: number;
}

/** Evidence kept per incident: enough to show the pattern, bounded for a long-running attack. */
const maxEvidence = 1000;
const idPattern = /^inc_[0-9a-z]{19}$/;

/** Mints the ids of incidents and timeline entries. */
export type IncidentIds = (prefix: string, now: Date) => string;

/**
 * Time-ordered ids: the time in base 36, a counter that orders the ids one minter (a detector, a desk)
 * makes within a millisecond, and randomness across minters and processes. Each minter its own, so
 * that nothing is counted across the modules a process happens to hold.
 */
export function incidentIds(): IncidentIds {
  let lastTime = 0;
  let counter = 0;
  return (prefix, now) => {
    const time = now.getTime();
    counter = time === lastTime ? counter + 1 : 0;
    lastTime = time;
    return `${prefix}_${time.toString(36).padStart(9, '0')}${counter.toString(36).padStart(2, '0')}${randomBytes(4).toString('hex')}`;
  };
}

type Row = DetectTables['detect_incidents'];

function incidentOf(row: Row): Incident {
  return {
    id: row.id,
    rule: row.rule,
    actor: row.actor,
    app_id: row.app_id,
    severity: row.severity as Severity,
    state: row.state as IncidentState,
    summary: row.summary,
    detections: Number(row.detections),
    containment: JSON.parse(row.containment) as ContainmentRecord[],
    playbook_version: row.playbook_version,
    opened_at: row.opened_at,
    updated_at: row.updated_at,
    closed_at: row.closed_at,
  };
}

/**
 * Opens an incident for a detection, or adds it to the open one of the same rule, actor and app.
 * `escalated` when the detection raised the incident's severity.
 */
export async function recordDetection(
  db: Db | DetectDb,
  detection: Detection,
  options: { now: Date; ids: IncidentIds; playbookVersion: string; msSinceAppend?: number; count?: number },
): Promise<{ incident: Incident; opened: boolean; escalated: boolean }> {
  const at = options.now.toISOString();
  const count = options.count ?? 1;
  return detectDb(db)
    .transaction()
    .execute(async (trx) => {
      // A finding about events from before an admin closed its incident (a detection coalesced, or read
      // late) belongs to that incident: it neither reopens it nor contains again.
      const closedAfter = trx
        .selectFrom('detect_incidents')
        .select('id')
        .where('rule', '=', detection.rule)
        .where('actor', '=', detection.actor)
        .where('app_id', '=', detection.app)
        .where('state', '=', 'closed')
        .where('closed_at', '>=', detection.at)
        .orderBy('closed_at', 'desc')
        .limit(1);
      // Write first, so the transaction holds the write lock before it reads.
      const bump = (which: 'open' | 'closed') =>
        trx
          .updateTable('detect_incidents')
          .set((eb) => ({ detections: eb('detections', '+', count), updated_at: at }))
          .where('rule', '=', detection.rule)
          .where('actor', '=', detection.actor)
          .where('app_id', '=', detection.app)
          .where((eb) => (which === 'open' ? eb('state', '!=', 'closed') : eb('id', '=', closedAfter)))
          .returningAll()
          .executeTakeFirst();
      const touched = (await bump('open')) ?? (await bump('closed'));
      let row: Row;
      let opened = false;
      let escalated = false;
      if (touched) {
        row = touched;
        escalated =
          row.state !== 'closed' && severityRank[detection.severity] > severityRank[row.severity as Severity];
        if (escalated) {
          await trx
            .updateTable('detect_incidents')
            .set({ severity: detection.severity })
            .where('id', '=', row.id)
            .execute();
          row = { ...row, severity: detection.severity };
        }
      } else {
        row = {
          id: options.ids('inc', options.now),
          rule: detection.rule,
          actor: detection.actor,
          app_id: detection.app,
          severity: detection.severity,
          state: 'open',
          summary: detection.summary,
          detections: count,
          containment: '[]',
          playbook_version: options.playbookVersion,
          opened_at: at,
          updated_at: at,
          closed_at: null,
        };
        await trx.insertInto('detect_incidents').values(row).execute();
        opened = true;
      }
      await trx
        .insertInto('detect_timeline')
        .values({
          id: options.ids('tl', options.now),
          incident_id: row.id,
          at,
          kind: 'detected',
          by_actor: 'detect',
          detail:
            `${detection.severity}: ${count > 1 ? `${count} detections, the last: ` : ''}${detection.summary} (event at ${detection.at}` +
            (options.msSinceAppend === undefined
              ? ')'
              : `; detected ${options.msSinceAppend} ms after its append)`),
        })
        .execute();
      const evidence = detection.evidence.slice(-maxEvidence);
      if (evidence.length > 0) {
        await trx
          .insertInto('detect_evidence')
          .values(evidence.map((index) => ({ incident_id: row.id, audit_index: index })))
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      return { incident: incidentOf(row), opened, escalated };
    });
}

export async function addTimeline(
  db: Db | DetectDb,
  incidentId: string,
  entry: { kind: string; by: string; detail: string; now: Date; ids: IncidentIds },
): Promise<void> {
  await detectDb(db)
    .insertInto('detect_timeline')
    .values({
      id: entry.ids('tl', entry.now),
      incident_id: incidentId,
      at: entry.now.toISOString(),
      kind: entry.kind,
      by_actor: entry.by,
      detail: entry.detail,
    })
    .execute();
}

export async function saveContainment(
  db: Db | DetectDb,
  incidentId: string,
  containment: readonly ContainmentRecord[],
  now: Date,
): Promise<void> {
  await detectDb(db)
    .updateTable('detect_incidents')
    .set({ containment: JSON.stringify(containment), updated_at: now.toISOString() })
    .where('id', '=', incidentId)
    .execute();
}

/** Newest first; the cursor is the last id of the previous page. */
export async function listIncidents(
  db: Db | DetectDb,
  q: IncidentQuery,
): Promise<{ records: Incident[]; next_cursor?: string }> {
  const limit = q.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 200) {
    throw new InputError('limit must be between 1 and 200', { parameter: 'limit' });
  }
  if (q.cursor !== undefined && !idPattern.test(q.cursor)) {
    throw new InputError('cursor is not one this API returned', { parameter: 'cursor' });
  }
  if (q.state !== undefined && !incidentStates.includes(q.state)) {
    throw new InputError(`state must be one of ${incidentStates.join(', ')}`, { parameter: 'state' });
  }
  let query = detectDb(db)
    .selectFrom('detect_incidents')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (q.cursor !== undefined) query = query.where('id', '<', q.cursor);
  if (q.state !== undefined) query = query.where('state', '=', q.state);
  if (q.rule !== undefined) query = query.where('rule', '=', q.rule);
  if (q.app_id !== undefined) query = query.where('app_id', '=', q.app_id);
  const rows = await query.execute();
  const records = rows.slice(0, limit).map(incidentOf);
  return rows.length > limit ? { records, next_cursor: records[records.length - 1].id } : { records };
}

export async function findIncident(db: Db | DetectDb, id: string): Promise<IncidentDetail> {
  if (typeof id !== 'string' || !idPattern.test(id)) {
    throw new IncidentError('INCIDENT_NOT_FOUND', 'no incident has this id');
  }
  const d = detectDb(db);
  const row = await d.selectFrom('detect_incidents').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new IncidentError('INCIDENT_NOT_FOUND', 'no incident has this id');
  const timeline = await d
    .selectFrom('detect_timeline')
    .select(['at', 'kind', 'by_actor', 'detail'])
    .where('incident_id', '=', id)
    .orderBy('id')
    .execute();
  const evidence = await d
    .selectFrom('detect_evidence')
    .select('audit_index')
    .where('incident_id', '=', id)
    .orderBy('audit_index')
    .execute();
  return {
    ...incidentOf(row),
    timeline: timeline.map((t) => ({ at: t.at, kind: t.kind, by: t.by_actor, detail: t.detail })),
    evidence: evidence.map((e) => Number(e.audit_index)),
  };
}

/**
 * Moves an incident to `to` (acknowledged or closed) with a timeline entry; INCIDENT_CONFLICT when it
 * is closed already (or acknowledged already, for an acknowledgement).
 */
export async function transition(
  db: Db | DetectDb,
  id: string,
  to: 'acknowledged' | 'closed',
  entry: { by: string; detail: string; now: Date; ids: IncidentIds },
): Promise<void> {
  await findIncident(db, id);
  const at = entry.now.toISOString();
  const from = to === 'acknowledged' ? ['open'] : ['open', 'acknowledged'];
  const result = await detectDb(db)
    .updateTable('detect_incidents')
    .set({ state: to, updated_at: at, ...(to === 'closed' ? { closed_at: at } : {}) })
    .where('id', '=', id)
    .where('state', 'in', from)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) {
    throw new IncidentError(
      'INCIDENT_CONFLICT',
      to === 'acknowledged'
        ? 'the incident is acknowledged or closed already'
        : 'the incident is closed already',
    );
  }
  await addTimeline(db, id, { ...entry, kind: to });
}
