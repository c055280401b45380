/**
 * Data-subject requests over the admin API (CONTRACT.md "Admin"):
 *
 *   POST /admin/v1/dsr                 { kind, regime?, contact_id | email, changes? } → 201 the request
 *   GET  /admin/v1/dsr?state&limit&cursor  { records, next_cursor }
 *   GET  /admin/v1/dsr/:id             the request: state, due date, steps, webhooks
 *   GET  /admin/v1/dsr/:id/export      the subject's data as one JSON document (access requests)
 *   GET  /admin/v1/dsr/:id/report      the closing report, verifiable offline
 *
 * `admin` creates and exports; `audit:read` may also read requests and reports.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/index.js';
import { InputError } from '../errors/index.js';
import { parseDsrRequest, type DsrDesk } from '../compliance/index.js';
import type { Governance } from '../compliance/index.js';
import { buildComplianceReport } from '../compliance/index.js';

const resourceType = 'dsr';
const admins = ['admin'];
const readers = ['admin', 'audit:read'];

export function registerDsrRoutes(
  app: FastifyInstance,
  deps: { governance: Governance; dsr: DsrDesk; audit: AuditLog },
): void {
  const { governance, dsr } = deps;
  void app.register(async (scope) => {
    governance.recordRefusals(scope, 'admin.dsr', resourceType);

    scope.post('/admin/v1/dsr', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.create', resourceType, scopes: admins },
        async (caller, record) => {
          const created = await dsr.create(parseDsrRequest(request.body), caller.email);
          record.resourceId = created.id;
          record.reason = `${created.kind} request ${created.state}`;
          void reply.code(201);
          return created;
        },
      ),
    );

    scope.get('/admin/v1/dsr', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.list', resourceType, scopes: readers },
        async (_caller, record) => {
          const q = request.query as Record<string, unknown>;
          const page = await dsr.list({
            state: text(q.state, 'state'),
            cursor: text(q.cursor, 'cursor'),
            limit: q.limit === undefined ? undefined : limitOf(q.limit),
          });
          record.recordCount = page.records.length;
          record.reason = `${page.records.length} requests returned`;
          return { records: page.records, next_cursor: page.next_cursor ?? null };
        },
      ),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/dsr/:id', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.show', resourceType, scopes: readers },
        async (_caller, record) => {
          record.resourceId = request.params.id;
          const found = await dsr.get(request.params.id);
          record.reason = `request is ${found.state}`;
          return found;
        },
      ),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/dsr/:id/export', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.export', resourceType, scopes: admins },
        async (_caller, record) => {
          record.resourceId = request.params.id;
          const exported = await dsr.exportOf(request.params.id);
          record.reason = 'subject export produced';
          return exported;
        },
      ),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/dsr/:id/report', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.report', resourceType, scopes: readers },
        async (_caller, record) => {
          record.resourceId = request.params.id;
          const closing = await dsr.closing(request.params.id);
          record.reason = 'closing report produced';
          return buildComplianceReport(deps.audit, {
            kind: 'dsr',
            subject: `data-subject request ${request.params.id}`,
            runs: [closing],
          });
        },
      ),
    );
  });
}

function text(value: unknown, parameter: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`${parameter} must be given once`, { parameter });
  return value;
}

function limitOf(value: unknown): number {
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,2}$/.test(value) || Number(value) > 200) {
    throw new InputError('limit must be between 1 and 200', { parameter: 'limit' });
  }
  return Number(value);
}
