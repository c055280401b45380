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
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/index.js';
import { parseDsrRequest, type DsrDesk } from '../compliance/index.js';
import type { Governance } from '../compliance/index.js';
import { buildComplianceReport } from '../compliance/index.js';
import { IdParams, Open, Page, QueryText, rejectInvalid, type AdminTypeProvider } from './shapes.js';

const resourceType = 'dsr';
const admins = ['admin'];
const readers = ['admin', 'audit:read'];
const dsrRecord = Open({ id: Type.String(), kind: Type.String(), state: Type.String() });
const listQuery = Open({
  state: QueryText({ maxLength: 200, description: 'state must be given once' }),
  cursor: QueryText({ maxLength: 200, description: 'cursor must be given once' }),
  limit: QueryText({
    pattern: '^([1-9][0-9]?|1[0-9]{2}|200)$',
    description: 'limit must be between 1 and 200',
  }),
});

export function registerDsrRoutes(
  app: FastifyInstance,
  deps: { governance: Governance; dsr: DsrDesk; audit: AuditLog },
): void {
  const { governance, dsr } = deps;
  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    governance.recordRefusals(scope, 'admin.dsr', resourceType);

    // The request's members depend on its kind and regime: the DSR desk parses them (parseDsrRequest).
    const createShape = {
      tags: ['dsr'],
      body: Type.Unknown({
        description: 'send a JSON object { kind, regime, contact_id | email, changes? }',
      }),
      response: { 201: dsrRecord },
    };
    scope.post('/admin/v1/dsr', { schema: createShape }, (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.create', resourceType, scopes: admins },
        async (caller, record) => {
          rejectInvalid(request);
          const created = await dsr.create(parseDsrRequest(request.body), caller.email);
          record.resourceId = created.id;
          record.reason = `${created.kind} request ${created.state}`;
          void reply.code(201);
          return created;
        },
      ),
    );

    const listShape = { tags: ['dsr'], querystring: listQuery, response: { 200: Page(dsrRecord) } };
    scope.get('/admin/v1/dsr', { schema: listShape }, (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'admin.dsr.list', resourceType, scopes: readers },
        async (_caller, record) => {
          rejectInvalid(request);
          const q = request.query;
          const page = await dsr.list({
            state: q.state,
            cursor: q.cursor,
            limit: q.limit === undefined ? undefined : Number(q.limit),
          });
          record.recordCount = page.records.length;
          record.reason = `${page.records.length} requests returned`;
          return { records: page.records, next_cursor: page.next_cursor ?? null };
        },
      ),
    );

    // One request by id, read by one of `scopes`: its id in the record, and why in the reason.
    const byId = (
      path: string,
      action: string,
      scopes: readonly string[],
      answer: TSchema,
      read: (id: string) => Promise<{ body: unknown; reason: string }>,
    ) =>
      scope.get(
        `/admin/v1/dsr/:id${path}`,
        { schema: { tags: ['dsr'], params: IdParams, response: { 200: answer } } },
        (request, reply) =>
          governance.call(request, reply, { action, resourceType, scopes }, async (_caller, record) => {
            rejectInvalid(request);
            record.resourceId = request.params.id;
            const { body, reason } = await read(request.params.id);
            record.reason = reason;
            return body;
          }),
      );

    byId('', 'admin.dsr.show', readers, dsrRecord, async (id) => {
      const found = await dsr.get(id);
      return { body: found, reason: `request is ${found.state}` };
    });
    byId(
      '/export',
      'admin.dsr.export',
      admins,
      Open({}, { description: "the subject's data as one JSON document" }),
      async (id) => ({ body: await dsr.exportOf(id), reason: 'subject export produced' }),
    );
    byId(
      '/report',
      'admin.dsr.report',
      readers,
      Open({}, { description: 'the closing report, verifiable offline' }),
      async (id) => {
        const closing = await dsr.closing(id);
        const body = await buildComplianceReport(deps.audit, {
          kind: 'dsr',
          subject: `data-subject request ${id}`,
          runs: [closing],
        });
        return { body, reason: 'closing report produced' };
      },
    );
  });
}
