import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { crmObjects, type CrmObject } from '../crm/index.js';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status' | 'app'>;
  readonly latency: Histogram<'route'>;
  readonly decisions: Counter<'outcome' | 'app'>;
  readonly recordsRead: Counter<'app' | 'data_class'>;
}

/** One registry per server, so several servers in one process (tests) keep separate counts. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by route, method, status and app',
      labelNames: ['route', 'method', 'status', 'app'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'gatehouse_decisions_total',
      help: 'Gateway decisions by outcome (allow, deny, error) and app',
      labelNames: ['outcome', 'app'],
      registers: [registry],
    }),
    recordsRead: new Counter({
      name: 'gatehouse_records_read_total',
      help: 'CRM records the gateway answered with, by app and the most sensitive data class of the fields read',
      labelNames: ['app', 'data_class'],
      registers: [registry],
    }),
  };
}

/** The CRM reads the gateway allowed, as audited: the audit event is what the counter counts. */
const readActions: ReadonlySet<string> = new Set(['crm.read', 'crm.list']);

/** Data classes from least to most sensitive; a class not listed ranks above them all. */
const sensitivity = ['public', 'internal', 'financial', 'pii', 'health'];
const rank = (dataClass: string) => {
  const at = sensitivity.indexOf(dataClass);
  return at === -1 ? sensitivity.length : at;
};

/**
 * What one audit event adds to `gatehouse_records_read_total`: its records, once, under the most
 * sensitive data class of the fields it read (a read of names and e-mails counts as `pii`).
 */
export function recordsReadBy(
  event: {
    action: string;
    outcome: string;
    app_id: string;
    resource_type: string;
    fields?: string;
    record_count?: number;
  },
  classesOf: (object: string, fields: readonly string[]) => readonly string[] | undefined,
): { app: string; data_class: string; records: number } | undefined {
  if (!readActions.has(event.action) || event.outcome !== 'allow' || !event.record_count) return undefined;
  const fields = (event.fields ?? '').split(',').filter(Boolean);
  const classes = classesOf(event.resource_type, fields) ?? [];
  const top = classes.reduce((most, c) => (rank(c) > rank(most) ? c : most), 'internal');
  return { app: event.app_id, data_class: top, records: event.record_count };
}

/** The distinct data classes of fields of a CRM object, from its metadata; undefined for no CRM object. */
export function classesOfFields(crm: {
  describe(object: CrmObject): { fields: readonly { name: string; dataClass: string }[] };
}): (object: string, fields: readonly string[]) => string[] | undefined {
  return (object, fields) => {
    if (!(crmObjects as readonly string[]).includes(object)) return undefined;
    const known = new Map(crm.describe(object as CrmObject).fields.map((f) => [f.name, f.dataClass]));
    return [...new Set(fields.map((field) => known.get(field) ?? 'internal'))].sort();
  };
}
