import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { governed, recordRefusalsBeforeHandler, type PipelineDeps, type Trail } from '../gateway/index.js';
import { callerWithScope } from './caller.js';
import {
  IdParams,
  Nullable,
  Open,
  Page,
  QueryChoice,
  QueryText,
  rejectInvalid,
  type AdminTypeProvider,
} from './shapes.js';

/** What the incident routes need from detection: src/detect's IncidentDesk fits it, wired by the server. */
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
const listQuery = Open({
  state: QueryChoice(['open', 'acknowledged', 'closed'], 'state is not a valid value'),
  rule: QueryText({ pattern: '^[a-z_]{1,64}$', description: 'rule is not a valid value' }),
  app_id: QueryText({ pattern: '^[A-Za-z0-9._-]{1,128}$', description: 'app_id is not a valid value' }),
  cursor: QueryText({ maxLength: 64, description: 'cursor is not a valid value' }),
  limit: QueryText({ pattern: '^[1-9][0-9]{0,2}$', description: 'limit must be between 1 and 200' }),
});
/** A change's body is optional: `{ note? }` or `{ reason? }` as text. */
const changeBody = Nullable(
  Open({ note: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) }),
  { description: 'the body must be a JSON object whose note or reason is text' },
);
const incident = Open({ id: Type.String(), rule: Type.String(), state: Type.String() });

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

  const caller = (request: FastifyRequest, trail: Trail, anyOf: readonly string[]) =>
    callerWithScope(deps, request, trail, 'incident', ...anyOf);

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.incidents', resourceType: 'incident' }));

    const listShape = { tags: ['incidents'], querystring: listQuery, response: { 200: Page(Open()) } };
    scope.get('/admin/v1/incidents', { schema: listShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.list', async (trail) => {
        await caller(request, trail, readers);
        rejectInvalid(request);
        const q = request.query;
        const page = await incidents.list({
          state: q.state as 'open' | 'acknowledged' | 'closed' | undefined,
          rule: q.rule,
          app_id: q.app_id,
          cursor: q.cursor,
          limit: q.limit === undefined ? undefined : Number(q.limit),
        });
        trail.reason = `${page.records.length} incidents returned`;
        return { records: page.records, next_cursor: page.next_cursor ?? null };
      }),
    );

    const showShape = { tags: ['incidents'], params: IdParams, response: { 200: incident } };
    scope.get('/admin/v1/incidents/:id', { schema: showShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.show', async (trail) => {
        await caller(request, trail, readers);
        rejectInvalid(request);
        trail.resourceId = request.params.id;
        const incident = await incidents.get(request.params.id);
        trail.reason = `${incident.rule} incident is ${incident.state}`;
        return incident;
      }),
    );

    const evidenceShape = {
      tags: ['incidents'],
      params: IdParams,
      response: { 200: Open({ events: Type.Array(Type.Unknown()) }) },
    };
    scope.get('/admin/v1/incidents/:id/evidence', { schema: evidenceShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.incidents.evidence', async (trail) => {
        await caller(request, trail, readers);
        rejectInvalid(request);
        trail.resourceId = request.params.id;
        const bundle = await incidents.evidence(request.params.id);
        trail.reason = `evidence bundle of ${bundle.events.length} events`;
        return bundle;
      }),
    );

    type Change = { note?: string; reason?: string };
    const changes = {
      acknowledge: async (id: string, by: string, body: Change) =>
        `now ${(await incidents.acknowledge(id, by, body.note)).state}`,
      annotate: async (id: string, by: string, body: Change) => {
        await incidents.annotate(id, by, body.note ?? '');
        return 'note added';
      },
      close: async (id: string, by: string, body: Change) =>
        `now ${(await incidents.close(id, by, body.reason ?? '')).state}`,
      restore: async (id: string, by: string, body: Change) => {
        const { reversed } = await incidents.restore(id, by, body.reason ?? '');
        return `lifted ${reversed.map((r) => r.action).join(', ')}`;
      },
    } as const;
    const changeShape = {
      tags: ['incidents'],
      params: IdParams,
      body: changeBody,
      response: { 200: incident },
    };
    for (const [step, change] of Object.entries(changes)) {
      scope.post(`/admin/v1/incidents/:id/${step}`, { schema: changeShape }, (request, reply) =>
        governed(deps, request, reply, `admin.incidents.${step}`, async (trail) => {
          const principal = await caller(request, trail, ['admin']);
          rejectInvalid(request);
          trail.resourceId = request.params.id;
          trail.reason = await change(request.params.id, principal.email, request.body ?? {});
          return incidents.get(request.params.id);
        }),
      );
    }
  });
}
