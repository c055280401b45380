/**
 * Synthetic audit traffic for measuring the rules: a company's normal weeks (people at work in their
 * own time zones, a busy app, a quiet app, a nightly job, a few ordinary denials) and the attacks each
 * rule exists for. Deterministic: the same seed gives the same events.
 */
import type { AuditEvent } from '../audit/index.js';
import type { DetectConfig } from '../config/index.js';
import { localTime } from './hours.js';
import type { Observed } from './types.js';

interface Person {
  readonly email: string;
  readonly role: string;
  readonly timeZone: string;
  readonly office: string;
  readonly home: string;
}

const people: readonly Person[] = [
  ...['alice', 'bob', 'frank', 'grace', 'heidi'].map((name, i) => ({
    email: `${name}@example.com`,
    role: i === 1 ? 'sales_manager' : 'sales_rep',
    timeZone: 'Europe/London',
    office: '10.1.2.0/24',
    home: `81.2.${69 + i}.0/24`,
  })),
  ...['erin', 'ivan', 'judy', 'mallory'].map((name, i) => ({
    email: `${name}@example.com`,
    role: i === 0 ? 'sales_rep' : i === 1 ? 'sales_manager' : 'sales_rep',
    timeZone: 'America/New_York',
    office: '10.20.0.0/24',
    home: `73.15.${10 + i}.0/24`,
  })),
  ...['kim', 'lee', 'ming'].map((name, i) => ({
    email: `${name}@example.com`,
    role: 'sales_rep',
    timeZone: 'Asia/Singapore',
    office: '10.30.0.0/24',
    home: `118.200.${5 + i}.0/24`,
  })),
];

/** The nightly reporting job's identity: it works every hour of every day. */
const reportJob = { email: 'reports@example.com', network: '10.99.0.0/24' };

/** Working hours for the synthetic people (the standard week in their zone) and the job (always). */
export function syntheticWorkingHours(): DetectConfig['workingHours']['users'] {
  const users: DetectConfig['workingHours']['users'] = {};
  for (const person of people) users[person.email] = { timeZone: person.timeZone };
  users[reportJob.email] = {
    days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
    start: '00:00',
    end: '24:00',
  };
  return users;
}

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface EventShape {
  at: number;
  actor: string;
  role?: string;
  app: string;
  action: string;
  object?: string;
  outcome?: AuditEvent['outcome'];
  reason?: string;
  fields?: string;
  records?: number;
  network?: string;
}

/**
 * An audit event from a compact shape (seconds since the epoch). `sequence` numbers its request id
 * within the series it belongs to (`shapes.map(eventOf)` numbers by position); no count is kept
 * between calls, so two test files or runs never see each other's numbers.
 */
export function eventOf(shape: EventShape, sequence = 0): AuditEvent {
  return {
    timestamp: new Date(shape.at * 1000).toISOString(),
    actor_id: shape.actor,
    actor_role: shape.role ?? 'sales_rep',
    app_id: shape.app,
    action: shape.action,
    resource_type: shape.object ?? 'contact',
    resource_id: '',
    scope: '',
    request_id: `syn-${sequence}`,
    trace_id: '',
    outcome: shape.outcome ?? 'allow',
    reason: shape.reason ?? (shape.outcome === 'deny' ? 'NOT_FOUND' : 'policy allow'),
    ...(shape.fields !== undefined && { fields: shape.fields }),
    ...(shape.records !== undefined && { record_count: shape.records }),
    ...(shape.network !== undefined && { client_network: shape.network }),
  };
}

const hour = 3600;
const day = 24 * hour;

/**
 * `days` of normal traffic from `start` (seconds; a Monday 00:00 UTC keeps weeks aligned), in time
 * order. Each person works 08:00-18:00 on weekdays in their zone through `call-notes` (busy: lists,
 * reads, notes) and, for managers, `pipeline-dashboard` (aggregates and a few reads); now and then a
 * record is not found or a field refused; the nightly job pages through opportunities at 02:00 UTC.
 */
export function normalTraffic(start: number, days: number, seed = 7): AuditEvent[] {
  const rand = random(seed);
  const events: AuditEvent[] = [];
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)];
  for (let d = 0; d < days; d++) {
    const dayStart = start + d * day;
    for (const person of people) {
      // The person's own calendar day with this date, and its offset (daylight saving moves it).
      const offset = zoneOffsetHours(person.timeZone, dayStart + 12 * hour);
      const weekday = [1, 2, 3, 4, 5].includes(new Date(dayStart * 1000).getUTCDay());
      // A weekend look at the phone now and then, from home.
      if (!weekday) {
        if (rand() < 0.2) {
          const at = dayStart + (10 - offset) * hour + Math.floor(rand() * 4 * hour);
          for (let i = 0; i < 3; i++) {
            events.push(read(person, at + i * 40, person.home));
          }
        }
        continue;
      }
      const fromHome = rand() < 0.15;
      for (let h = 8; h < 18; h++) {
        const hourStart = dayStart + (h - offset) * hour;
        const busy = h === 12 ? 0.3 : 1;
        const requests = Math.floor((15 + rand() * 30) * busy);
        for (let r = 0; r < requests; r++) {
          const at = hourStart + Math.floor(rand() * hour);
          const network = fromHome ? person.home : person.office;
          const kind = rand();
          if (kind < 0.5) events.push(read(person, at, network));
          else if (kind < 0.8) {
            events.push(
              eventOf({
                at,
                actor: person.email,
                role: person.role,
                app: 'call-notes',
                action: 'crm.list',
                object: pick(['contact', 'account', 'note']),
                fields: 'first_name,last_name,title',
                records: 5 + Math.floor(rand() * 45),
                network,
              }),
            );
          } else if (kind < 0.97) {
            events.push(
              eventOf({
                at,
                actor: person.email,
                role: person.role,
                app: 'call-notes',
                action: 'crm.create',
                object: 'note',
                fields: 'body,contact_id',
                records: 1,
                network,
              }),
            );
          } else {
            events.push(
              eventOf({
                at,
                actor: person.email,
                role: person.role,
                app: 'call-notes',
                action: 'crm.read',
                outcome: 'deny',
                reason: pick(['NOT_FOUND', 'FIELD_NOT_ALLOWED: national_id', 'PRECONDITION_FAILED']),
                network,
              }),
            );
          }
        }
        if (person.role === 'sales_manager' && rand() < 0.6) {
          const at = hourStart + Math.floor(rand() * hour);
          events.push(
            eventOf({
              at,
              actor: person.email,
              role: person.role,
              app: 'pipeline-dashboard',
              action: 'crm.aggregate',
              object: 'opportunity',
              fields: 'amount,stage',
              network: fromHome ? person.home : person.office,
            }),
          );
          events.push(
            eventOf({
              at: at + 5,
              actor: person.email,
              role: person.role,
              app: 'pipeline-dashboard',
              action: 'crm.list',
              object: 'opportunity',
              fields: 'amount,name,stage',
              records: 20,
              network: fromHome ? person.home : person.office,
            }),
          );
        }
      }
    }
    // The nightly job: 120 pages of 50 opportunities from 02:00 UTC, one every 20 s.
    for (let page = 0; page < 120; page++) {
      events.push(
        eventOf({
          at: dayStart + 2 * hour + page * 20,
          actor: reportJob.email,
          role: 'service',
          app: 'weekly-report',
          action: 'crm.list',
          object: 'opportunity',
          fields: 'amount,close_date,name,stage',
          records: 50,
          network: reportJob.network,
        }),
      );
    }
  }
  return events
    .map((event, i) => ({ ...event, request_id: `syn-${i + 1}` }))
    .sort((a, b) => a.timestamp.localeCompare(b.timestamp));
}

function zoneOffsetHours(timeZone: string, seconds: number): number {
  const { day, minute } = localTime(timeZone, seconds);
  const utc = new Date(seconds * 1000);
  const dayShift = (dayNames.indexOf(day) - utc.getUTCDay() + 7) % 7;
  const shift = dayShift === 1 ? 1 : dayShift === 6 ? -1 : 0;
  return Math.round((shift * 1440 + minute - (utc.getUTCHours() * 60 + utc.getUTCMinutes())) / 60);
}

const dayNames = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function read(person: Person, at: number, network: string): AuditEvent {
  return eventOf({
    at,
    actor: person.email,
    role: person.role,
    app: 'call-notes',
    action: 'crm.read',
    object: 'contact',
    fields: 'email,first_name,last_name,phone',
    records: 1,
    network,
  });
}

/** Numbers events in order from `first`, as the log would. */
export function numbered(events: readonly AuditEvent[], first = 0): Observed[] {
  return events.map((event, i) => ({ index: first + i, event }));
}
