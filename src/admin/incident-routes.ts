import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AccessDenied, InputError } from '../errors/index.js';
import {
  authenticate,
  governed,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
  type Trail,
} from '../gateway/index.js';

/**
 * What the incident routes need from detection (src/detect's IncidentDesk fits it): the gateway hosts the
 * admin API without depending on the detect module.
 */
export interface IncidentDeskPort {
  list(q: {
    state?: 'open' | 'acknowledged' | 'closed';
    rule?: string;
    app_id?: string;
    cursor?: string;
    limit?: number;
  }): Promise<{ records: unknown[]; next_cursor?: string }>;
  get(id: string): Promise<{ id: string; rule: string; state: string }>;
  acknowledge(id: string, by: string, note?: string): Promise<{ state: string }>;
  annotate(id: string, by: string, note: string): Promise<unknown>;
  close(id: string, by: string, reason: string): Promise<{ state: string }>;
  restore(id: string, by: string, reason: string): Promise<{ reversed: ReadonlyArray<{ action: string }> }>;
  evidence(id: string): Promise<{ events: readonly unknown[] }>;
}

export interface IncidentRouteDeps extends PipelineDeps {
  incidents: IncidentDeskPort;
}

/** Who may look at incidents and export their evidence; only `admin` changes them. */
const readers = ['admin', 'audit:read'];
const states = new Set(['open', 'acknowledged', 'closed']);
const name = /^[a-z_]{1,64}$/;
const appId = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Incidents (CONTRACT.md "Admin", issue 8), through the console client. Every call runs in governed(),
 * so allowed and refused calls alike are audited; each change also appends its own `incident.*` event.
 *
 *   GET  /admin/v1/incidents?state&rule&app_id&limit&cursor   { records, next_cursor }
 *   GET  /admin/v1/incidents/:id                              the incident, its timeline and evidence indexes
 *   GET  /admin/v1/incidents/:id/evidence                     the evidence bundle (verifiable offline)
 *   POST /admin/v1/incidents/:id/acknowledge                  { note? }
 *   POST /admin/v1/incidents/:id/annotate                     { note }
 *   POST /admin/v1/incidents/:id/close                        { reason }
 *   POST /admin/v1/incidents/:id/restore                      { reason? }  lifts throttle and suspension
 */
export function registerIncidentRoutes(app: FastifyInstance, deps: IncidentRouteDeps): void {
  const { incidents } = deps;

  const caller = async (request: FastifyRequest, trail: Trail, anyOf: readonly string[]) => {
    trail.resourceType = 'incident';
    const principal = await authenticate(deps, request, trail);
    const held = anyOf.filter((scope) => principal.scopes.includes(scope));
    if (held.length === 0) {
      throw new AccessDenied('SCOPE_MISSING', `this call needs the ${anyOf.join(' or ')} scope`, {
        scope: anyOf.join(' '),
      });
    }
    trail.scopes = held;
    return principal;
  };

  void app.register(async (scope) => {
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.incidents', resourceType: 'incident' }));

    scope.get('/admin/v1/incidents', (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.list', async (trail) => {
        await caller(request, trail, readers);
        const q = request.query as Record<string, unknown>;
        const page = await incidents.list({
          state: optional(q.state, 'state', (v) => states.has(v)) as
            'open' | 'acknowledged' | 'closed' | undefined,
          rule: optional(q.rule, 'rule', (v) => name.test(v)),
          app_id: optional(q.app_id, 'app_id', (v) => appId.test(v)),
          cursor: optional(q.cursor, 'cursor', (v) => v.length <= 64),
          limit: limitOf(q.limit),
        });
        trail.reason = `${page.records.length} incidents returned`;
        return { records: page.records, next_cursor: page.next_cursor ?? null };
      }),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/incidents/:id', (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.show', async (trail) => {
        await caller(request, trail, readers);
        trail.resourceId = request.params.id;
        const incident = await incidents.get(request.params.id);
        trail.reason = `${incident.rule} incident is ${incident.state}`;
        return incident;
      }),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/incidents/:id/evidence', (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.evidence', async (trail) => {
        await caller(request, trail, readers);
        trail.resourceId = request.params.id;
        const bundle = await incidents.evidence(request.params.id);
        trail.reason = `evidence bundle of ${bundle.events.length} events`;
        return bundle;
      }),
    );

    const changes = {
      acknowledge: async (id: string, by: string, body: Record<string, unknown>) =>
        `now ${(await incidents.acknowledge(id, by, text(body.note, 'note'))).state}`,
      annotate: async (id: string, by: string, body: Record<string, unknown>) => {
        await incidents.annotate(id, by, text(body.note, 'note') ?? '');
        return 'note added';
      },
      close: async (id: string, by: string, body: Record<string, unknown>) =>
        `now ${(await incidents.close(id, by, text(body.reason, 'reason') ?? '')).state}`,
      restore: async (id: string, by: string, body: Record<string, unknown>) => {
        const { reversed } = await incidents.restore(id, by, text(body.reason, 'reason') ?? '');
        return `lifted ${reversed.map((r) => r.action).join(', ')}`;
      },
    } as const;
    for (const [step, change] of Object.entries(changes)) {
      scope.post<{ Params: { id: string } }>(`/admin/v1/incidents/:id/${step}`, (request, reply) =>
        governed(deps, request, reply, `admin.incidents.${step}`, async (trail) => {
          const principal = await caller(request, trail, ['admin']);
          trail.resourceId = request.params.id;
          trail.reason = await change(request.params.id, principal.email, bodyOf(request.body));
          return incidents.get(request.params.id);
        }),
      );
    }
  });
}

function bodyOf(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError('the body must be a JSON object', { parameter: 'body' });
  }
  return body as Record<string, unknown>;
}

function text(value: unknown, parameter: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`${parameter} must be text`, { parameter });
  return value;
}

function optional(value: unknown, parameter: string, valid: (v: string) => boolean): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !valid(value)) {
    throw new InputError(`${parameter} is not a valid value`, { parameter });
  }
  return value;
}

function limitOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,2}$/.test(value)) {
    throw new InputError('limit must be between 1 and 200', { parameter: 'limit' });
  }
  return Number(value);
}
