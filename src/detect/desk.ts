/**
 * The incident desk: what an admin does with incidents, by the HTTP API or the CLI alike. Every change
 * is audited (`incident.<verb>`, the admin as actor); notes and reasons go to the incident's timeline,
 * never into the audit trail, since free text may hold anything.
 */
import { buildEvidenceBundle, type AuditLog, type EvidenceBundle } from '../audit/index.js';
import { IncidentError, InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { restore, type Containment, type ContainmentRecord, type ThrottleSettings } from './containment.js';
import {
  addTimeline,
  findIncident,
  incidentIds,
  listIncidents,
  saveContainment,
  transition,
  type Incident,
  type IncidentDetail,
  type IncidentQuery,
} from './incidents.js';

export interface IncidentDeskOptions {
  readonly db: Db;
  readonly audit: AuditLog;
  readonly containment: Containment;
  readonly throttle: ThrottleSettings;
  readonly now?: () => Date;
}

export interface IncidentDesk {
  list(q: IncidentQuery): Promise<{ records: Incident[]; next_cursor?: string }>;
  get(id: string): Promise<IncidentDetail>;
  acknowledge(id: string, by: string, note?: string): Promise<IncidentDetail>;
  annotate(id: string, by: string, note: string): Promise<IncidentDetail>;
  close(id: string, by: string, reason: string): Promise<IncidentDetail>;
  /** Lifts the incident's throttle and suspension; revoked tokens stay revoked. */
  restore(
    id: string,
    by: string,
    reason: string,
  ): Promise<{ incident: IncidentDetail; reversed: ContainmentRecord[] }>;
  /** The incident's audit events with inclusion proofs against one signed checkpoint. */
  evidence(id: string): Promise<EvidenceBundle>;
}

const maxText = 2000;
// eslint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** Free text from an admin: present, bounded, no control characters but newlines and tabs. */
function text(value: unknown, name: string, required: boolean): string | undefined {
  if (value === undefined || value === null || value === '') {
    if (required) throw new InputError(`${name} is required`, { parameter: name });
    return undefined;
  }
  if (typeof value !== 'string' || value.length > maxText || controlCharacter.test(value)) {
    throw new InputError(`${name} must be text of at most ${maxText} characters`, { parameter: name });
  }
  return value.trim();
}

export function createIncidentDesk(options: IncidentDeskOptions): IncidentDesk {
  const { db, audit } = options;
  const now = options.now ?? (() => new Date());
  const ids = incidentIds();

  async function record(incident: IncidentDetail, verb: string, by: string, reason: string): Promise<void> {
    await audit.append({
      timestamp: now().toISOString(),
      actor_id: by,
      actor_role: 'admin',
      app_id: incident.app_id,
      action: `incident.${verb}`,
      resource_type: 'incident',
      resource_id: incident.id,
      scope: '',
      request_id: incident.id,
      trace_id: '',
      outcome: 'allow',
      reason,
    });
  }

  const actor = (by: string) => {
    if (typeof by !== 'string' || by === '') throw new TypeError('an incident change needs who made it');
    return by;
  };

  return {
    list: (q) => listIncidents(db, q),
    get: (id) => findIncident(db, id),

    async acknowledge(id, by, note) {
      const detail = text(note, 'note', false);
      await transition(db, id, 'acknowledged', {
        by: actor(by),
        detail: detail ?? 'acknowledged',
        now: now(),
        ids,
      });
      const incident = await findIncident(db, id);
      await record(incident, 'acknowledge', by, `acknowledged incident ${id} (${incident.rule})`);
      return incident;
    },

    async annotate(id, by, note) {
      const detail = text(note, 'note', true) as string;
      const before = await findIncident(db, id);
      await addTimeline(db, id, { kind: 'annotated', by: actor(by), detail, now: now(), ids });
      await record(before, 'annotate', by, `annotated incident ${id} (${before.rule})`);
      return findIncident(db, id);
    },

    async close(id, by, reason) {
      const detail = text(reason, 'reason', true) as string;
      await transition(db, id, 'closed', { by: actor(by), detail, now: now(), ids });
      const incident = await findIncident(db, id);
      await record(incident, 'close', by, `closed incident ${id} (${incident.rule})`);
      return incident;
    },

    async restore(id, by, reason) {
      const why = text(reason, 'reason', false) ?? 'restored by an admin';
      const before = await findIncident(db, id);
      const { records, reversed } = await restore(before, actor(by), why, {
        containment: options.containment,
        audit,
        throttle: options.throttle,
        now,
      });
      if (reversed.length === 0) {
        throw new IncidentError(
          'INCIDENT_CONFLICT',
          'the incident has no throttle or suspension in force to lift (revoked tokens stay revoked)',
        );
      }
      await saveContainment(db, id, records, now());
      await addTimeline(db, id, {
        kind: 'restored',
        by,
        detail: `${reversed.map((r) => `${r.action} ${r.target}`).join(', ')} lifted: ${why}`,
        now: now(),
        ids,
      });
      await record(
        before,
        'restore',
        by,
        `restored incident ${id}: ${reversed.map((r) => r.action).join(', ')} lifted`,
      );
      return { incident: await findIncident(db, id), reversed };
    },

    async evidence(id) {
      const incident = await findIncident(db, id);
      return buildEvidenceBundle(audit, incident.evidence, {
        subject: `incident ${incident.id}: ${incident.rule}, app ${incident.app_id}, actor ${incident.actor}`,
        now,
      });
    },
  };
}
