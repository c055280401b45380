import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf } from './support/http.js';

/**
 * The admin API's declared shapes on a real server: /admin/v1/openapi.json lists every control-plane
 * route with the shapes Fastify validates and serialises with, real answers fit the documented shapes,
 * and a request that does not fit is refused as before (401 before 422, audited).
 */

interface Operation {
  parameters?: { in: string; name: string; required?: boolean; schema: unknown }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

/** Every route of the control plane (CONTRACT.md "Admin", "Audit", /metrics), as OpenAPI names them. */
const adminRoutes = [
  'get /admin/v1/apps',
  'post /admin/v1/apps',
  'get /admin/v1/apps/{id}',
  'put /admin/v1/apps/{id}/manifest',
  'post /admin/v1/apps/{id}/bundle',
  'post /admin/v1/apps/{id}/deploy-check',
  'post /admin/v1/apps/{id}/approve',
  'post /admin/v1/apps/{id}/deny',
  'post /admin/v1/apps/{id}/suspend',
  'post /admin/v1/apps/{id}/restore',
  'post /admin/v1/apps/{id}/retire',
  'get /admin/v1/apps/{id}/suggest-scopes',
  'get /admin/v1/apps/{id}/runbook',
  'post /admin/v1/offboard',
  'post /admin/v1/offboard/preview',
  'get /admin/v1/policies',
  'post /admin/v1/policies/test',
  'post /admin/v1/policies/simulate',
  'post /admin/v1/policies/publish',
  'get /admin/v1/incidents',
  'get /admin/v1/incidents/{id}',
  'get /admin/v1/incidents/{id}/evidence',
  'post /admin/v1/incidents/{id}/acknowledge',
  'post /admin/v1/incidents/{id}/annotate',
  'post /admin/v1/incidents/{id}/close',
  'post /admin/v1/incidents/{id}/restore',
  'get /admin/v1/keys',
  'post /admin/v1/keys/rotate',
  'post /admin/v1/keys/{kid}/revoke',
  'get /admin/v1/me',
  'get /admin/v1/me/apps',
  'post /admin/v1/me/apps/{id}/revoke',
  'get /admin/v1/admission',
  'post /admin/v1/admission',
  'get /admin/v1/dsr',
  'post /admin/v1/dsr',
  'get /admin/v1/dsr/{id}',
  'get /admin/v1/dsr/{id}/export',
  'get /admin/v1/dsr/{id}/report',
  'get /audit/v1/events',
  'get /audit/v1/checkpoint',
  'get /audit/v1/public-key',
  'get /audit/v1/proof/inclusion',
  'get /audit/v1/proof/consistency',
  'get /metrics',
];

let demo: Demo;
let document: Document;
const tokens = new Map<string, string>();

/** A console token: `maker admin` for dave, `audit:read` for carol. */
async function consoleToken(user: 'dave' | 'carol'): Promise<string> {
  const scope = { dave: 'maker admin', carol: 'audit:read' }[user];
  if (!tokens.has(user)) tokens.set(user, await demo.accessToken(user, 'console', scope));
  return tokens.get(user) as string;
}

/** A plan the admission policy approves at once, registered by an admin for alice. */
const plan = {
  name: 'shape-check',
  owner: 'alice@example.com',
  purpose: 'see the accounts of my territory',
  scopes: ['read:account.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
};

beforeAll(async () => {
  demo = await startDemo();
  const registered = await demo.send('POST', '/admin/v1/apps', await consoleToken('dave'), { json: plan });
  expect(registered.status).toBe(201);
  const response = await demo.get('/admin/v1/openapi.json');
  expect(response.status).toBe(200);
  document = await json<Document>(response);
});

afterAll(async () => {
  await demo?.stop();
});

function operation(route: string): Operation {
  const [method = '', path = ''] = route.split(' ');
  const found = document.paths[path]?.[method];
  if (!found) throw new Error(`${route} is not in /admin/v1/openapi.json`);
  return found;
}

function answerShape(route: string, status: string): object {
  const schema = operation(route).responses[status]?.content?.['application/json']?.schema;
  if (!schema) throw new Error(`${route} documents no JSON answer for ${status}`);
  return schema;
}

describe('GET /admin/v1/openapi.json', () => {
  it('lists every admin route and nothing of the data plane', () => {
    expect(document.openapi).toBe('3.1.0');
    const listed = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    expect(listed.sort()).toEqual([...adminRoutes].sort());
    expect(listed.filter((route) => route.includes('/crm/') || route.includes('/oauth'))).toEqual([]);
  });

  it('documents the query, params, body and answer each route declares', () => {
    for (const route of adminRoutes) {
      const success = Object.keys(operation(route).responses).filter((status) => status.startsWith('2'));
      expect(success, route).not.toEqual([]);
    }
    const names = (route: string, where: string) =>
      (operation(route).parameters ?? []).filter((p) => p.in === where).map((p) => p.name);
    expect(names('get /admin/v1/apps', 'query').sort()).toEqual(
      ['class', 'cursor', 'limit', 'needs_review', 'owner', 'risk', 'state', 'unused'].sort(),
    );
    expect(names('post /admin/v1/keys/{kid}/revoke', 'path')).toEqual(['kid']);
    expect(names('get /audit/v1/proof/inclusion', 'query').sort()).toEqual(['index', 'size']);
    const body = operation('post /admin/v1/apps/{id}/approve').requestBody?.content['application/json'];
    expect(body?.schema).toMatchObject({
      type: 'object',
      required: ['reason'],
      additionalProperties: false,
    });
  });

  it('describes real answers: the documented response shapes hold what the routes send', async () => {
    const ajv = new Ajv2020({ strict: false });
    const reads: [string, 'dave' | 'carol'][] = [
      ['get /admin/v1/apps', 'dave'],
      ['get /admin/v1/policies', 'dave'],
      ['get /admin/v1/keys', 'dave'],
      ['get /admin/v1/incidents', 'dave'],
      ['get /admin/v1/me', 'dave'],
      ['get /admin/v1/admission', 'dave'],
      ['get /admin/v1/dsr', 'dave'],
      ['get /audit/v1/events', 'carol'],
    ];
    for (const [route, user] of reads) {
      const response = await demo.get(route.split(' ')[1]!, await consoleToken(user));
      expect(response.status, route).toBe(200);
      const answer = await json<unknown>(response);
      const fits = ajv.validate(answerShape(route, '200'), answer);
      expect(fits ? [] : ajv.errors, route).toEqual([]);
    }
    const shown = await json(await demo.get(`/admin/v1/apps/${plan.name}`, await consoleToken('dave')));
    expect(ajv.validate(answerShape('get /admin/v1/apps/{id}', '200'), shown)).toBe(true);
    expect(ajv.validate(answerShape('post /admin/v1/apps', '201'), shown)).toBe(true);
  });
});

describe('a request that does not fit its declared shape', () => {
  it('is refused with 422 INVALID_INPUT naming the parameter, and the refusal is audited', async () => {
    const response = await demo.get('/admin/v1/apps?limit=0', await consoleToken('dave'));
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(problem.detail).toBe('limit must be a positive integer');
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(response));
    expect(event?.event).toMatchObject({
      action: 'admin.apps.list',
      actor_id: 'dave@example.com',
      outcome: 'deny',
      reason: 'INVALID_INPUT',
    });
  });

  it('from a caller without a token is 401 first: the shape is checked only for an authorised caller', async () => {
    await expectProblem(await demo.get('/admin/v1/apps?limit=0'), 401, 'TOKEN_MISSING');
    const approve = await demo.send('POST', '/admin/v1/apps/any-app/approve', undefined, {
      json: { reason: 'ok', extra: true },
    });
    await expectProblem(approve, 401, 'TOKEN_MISSING');
  });

  it('keeps a body member it does not know out: refused, never silently dropped', async () => {
    const response = await demo.send(
      'POST',
      `/admin/v1/apps/${plan.name}/suspend`,
      await consoleToken('dave'),
      { json: { reason: 'checking shapes', force: true } },
    );
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(problem.detail).toBe('send { reason }');
  });
});
