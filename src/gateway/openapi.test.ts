import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditOrigin, openAuditLog, type AuditLog } from '../audit/index.js';
import { demoApps } from '../catalog/index.js';
import { loadConfig, type Config } from '../config/index.js';
import { createEmbeddedCrm, seedCrm, type CrmConnector, type CrmObject } from '../crm/index.js';
import { TokenError, toProblem } from '../errors/index.js';
import { createLimits, defaultLimitsConfig } from '../limits/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { storedWriteKeys } from './idempotency.js';
import { narrowOpenApi, registerOpenApiRoute, type OpenApiOptions } from './openapi.js';
import { registerCrmRoutes } from './routes.js';
import { declareShapes } from './shapes.js';
import { testDatabase } from '../../test/support/database.js';

type Json = Record<string, unknown>;

const serverUrl = 'http://127.0.0.1:8080';
const httpMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let dir: string;
let store: Store;
let crm: CrmConnector;
let config: Config;
let options: OpenApiOptions;
/** What @fastify/swagger generates from the CRM routes' shapes, before our transform. */
let generated: Json;
let app: FastifyInstance;
let audit: AuditLog;
const lookups: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-openapi-'));
  config = loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } });
  store = await openGatehouseStore(config);
  crm = createEmbeddedCrm(store.db);
  await seedCrm(store.db, {
    contacts: 100,
    seed: 5,
    owners: [{ email: 'alice@example.com', territory: 'EMEA' }],
  });
  options = {
    serverUrl,
    fieldsets: config.scopes,
    describe: (object) => crm.describe(object),
    maskedFields: Object.values(config.roles).flatMap((role) => Object.keys(role.masks)),
  };
  audit = await openAuditLog({ db: store.db, secrets: openLocalSecretStore(dir), origin: auditOrigin });
  // The test names each request's id, to find its audit event.
  app = Fastify({ requestIdHeader: 'x-request-id' });
  app.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error, { publicUrl: 'http://gatehouse.test', instance: request.id });
    return reply.code(problem.status).type('application/problem+json').send(problem);
  });
  const deps = {
    config,
    crm,
    cursorKey: randomBytes(32),
    writeKeys: storedWriteKeys(store.db),
    serverUrl,
    audit,
    limits: createLimits(defaultLimitsConfig),
    // Documents take no record-level decision: the policy only names its version in the events.
    policy: {
      version: 'unit',
      rows: () => [],
      record: () => undefined,
    },
    lookupApp: async (id: string) => {
      lookups.push(id);
      const found = demoApps.find((a) => a.id === id);
      return found && { scopes: found.scopes, clientId: found.clientId };
    },
    // The token check itself is the broker's (tested there and end to end); here: `app <id>`.
    authenticateCaller: async (request: FastifyRequest) => {
      const [, appId = ''] = /^app (\S+)$/.exec(request.headers.authorization ?? '') ?? [];
      if (!appId) throw new TokenError('missing', 'send an access token');
      const scope = appId === 'console' ? 'admin' : 'read:account.basic';
      return {
        sub: 'u1',
        email: 'u1@example.com',
        role: 'sales_rep',
        client_id: appId,
        app_id: appId,
        scope,
      };
    },
  };
  // As registerGatewayRoutes composes them, keeping the scope whose swagger() generates the document.
  let gateway: FastifyInstance | undefined;
  await app.register(async (scope) => {
    declareShapes(scope);
    await registerOpenApiRoute(scope, deps);
    registerCrmRoutes(scope, deps);
    gateway = scope;
  });
  await app.ready();
  generated = gateway?.swagger() as unknown as Json;
});

afterAll(async () => {
  await app.close();
  await audit.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function appScopes(id: string): readonly string[] {
  const app = demoApps.find((a) => a.id === id);
  if (!app) throw new Error(`no demo app ${id}`);
  return app.scopes;
}

/** The value a local JSON pointer (`#/components/...`) names, or undefined. */
function resolve(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function deref(doc: Json, node: unknown): Json {
  const value = node as Json;
  return typeof value.$ref === 'string' ? (resolve(doc, value.$ref) as Json) : value;
}

function refsOf(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => refsOf(item, out));
  else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push(value);
      else refsOf(value, out);
    }
  }
  return out;
}

function operations(doc: Json): Array<{ path: string; method: string; op: Json; pathItem: Json }> {
  const out: Array<{ path: string; method: string; op: Json; pathItem: Json }> = [];
  for (const [path, pathItem] of Object.entries(doc.paths as Json)) {
    for (const method of httpMethods) {
      const op = (pathItem as Json)[method];
      if (op) out.push({ path, method, op: op as Json, pathItem: pathItem as Json });
    }
  }
  return out;
}

const jsonTypes = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

/** Checks a JSON Schema (the parts this document uses) for well-formedness, recursively. */
function checkSchema(doc: Json, schema: Json, where: string): void {
  if (typeof schema.$ref === 'string') {
    expect(resolve(doc, schema.$ref), `${where}: ${schema.$ref}`).toBeDefined();
    return;
  }
  const types = schema.type === undefined ? [] : [schema.type].flat();
  for (const type of types)
    expect(jsonTypes.has(type as string), `${where}: type ${String(type)}`).toBe(true);
  if (schema.enum !== undefined) expect(Array.isArray(schema.enum), `${where}: enum`).toBe(true);
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  for (const name of (schema.required ?? []) as string[]) {
    expect(Object.hasOwn(properties, name), `${where}: required ${name} is a property`).toBe(true);
  }
  for (const [name, property] of Object.entries(properties)) checkSchema(doc, property, `${where}.${name}`);
  if (schema.items) checkSchema(doc, schema.items as Json, `${where}[]`);
}

/** A structural check of an OpenAPI 3.1 document, strict about what this builder produces. */
function checkDocument(doc: Json): void {
  expect(doc.openapi).toBe('3.1.0');
  expect((doc.info as Json).title).toEqual(expect.any(String));
  expect((doc.info as Json).version).toEqual(expect.any(String));
  expect(doc.servers).toEqual([{ url: serverUrl }]);

  for (const ref of refsOf(doc)) expect(resolve(doc, ref), `$ref ${ref} resolves`).toBeDefined();

  const components = doc.components as Record<string, Json>;
  for (const section of Object.values(components)) {
    for (const key of Object.keys(section)) expect(key).toMatch(/^[a-zA-Z0-9._-]+$/);
  }
  for (const [name, schema] of Object.entries(components.schemas as Record<string, Json>)) {
    checkSchema(doc, schema, name);
  }
  const schemes = components.securitySchemes as Record<string, Json>;
  const oauthScopes = Object.keys(
    ((schemes.gatehouse_oauth?.flows as Json).authorizationCode as Json).scopes as Json,
  );

  const ids = operations(doc).map(({ op }) => op.operationId);
  expect(new Set(ids).size, 'operationIds are unique').toBe(ids.length);

  for (const { path, method, op, pathItem } of operations(doc)) {
    const where = `${method.toUpperCase()} ${path}`;
    expect(path.startsWith('/'), where).toBe(true);
    expect(op.operationId, where).toMatch(/^[a-zA-Z][a-zA-Z0-9]*$/);
    const params = [...((pathItem.parameters ?? []) as Json[]), ...((op.parameters ?? []) as Json[])].map(
      (p) => deref(doc, p),
    );
    const keys = params.map((p) => `${String(p.in)}:${String(p.name)}`);
    expect(new Set(keys).size, `${where}: parameters are unique`).toBe(keys.length);
    for (const param of params) {
      expect(['query', 'path', 'header', 'cookie']).toContain(param.in);
      expect(param.schema, `${where}: ${String(param.name)} has a schema`).toBeDefined();
      checkSchema(doc, param.schema as Json, `${where} ${String(param.name)}`);
      if (param.in === 'path') {
        expect(param.required).toBe(true);
        expect(path).toContain(`{${String(param.name)}}`);
      }
    }
    for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
      expect(keys, `${where}: path parameter ${name} is declared`).toContain(`path:${name}`);
    }
    const responses = op.responses as Record<string, Json>;
    expect(
      Object.keys(responses).some((status) => /^2\d\d$/.test(status)),
      `${where}: a 2xx`,
    ).toBe(true);
    for (const [status, response] of Object.entries(responses)) {
      expect(status).toMatch(/^[1-5]\d\d$/);
      const resolved = deref(doc, response);
      expect(resolved.description, `${where} ${status}`).toEqual(expect.any(String));
      for (const media of Object.values((resolved.content ?? {}) as Record<string, Json>)) {
        checkSchema(doc, media.schema as Json, `${where} ${status}`);
      }
    }
    for (const requirement of (op.security ?? []) as Record<string, string[]>[]) {
      for (const [scheme, scopes] of Object.entries(requirement)) {
        expect(Object.keys(schemes), `${where}: scheme ${scheme}`).toContain(scheme);
        if (scheme === 'gatehouse_oauth') for (const scope of scopes) expect(oauthScopes).toContain(scope);
      }
    }
  }
}

/** Validates a value against the subset of JSON Schema the document uses. */
function conforms(doc: Json, schema: Json, value: unknown): boolean {
  if (typeof schema.$ref === 'string') return conforms(doc, resolve(doc, schema.$ref) as Json, value);
  const types = schema.type === undefined ? undefined : [schema.type].flat();
  const typeOf = (v: unknown) =>
    v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
  if (types && !types.some((t) => t === typeOf(value) || (t === 'number' && typeOf(value) === 'integer')))
    return false;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return false;
  if (typeOf(value) === 'object') {
    const record = value as Json;
    const properties = (schema.properties ?? {}) as Record<string, Json>;
    if (((schema.required ?? []) as string[]).some((name) => !(name in record))) return false;
    for (const [name, v] of Object.entries(record)) {
      if (properties[name]) {
        if (!conforms(doc, properties[name], v)) return false;
      } else if (schema.additionalProperties === false) return false;
    }
  }
  if (typeOf(value) === 'array' && schema.items)
    return (value as unknown[]).every((v) => conforms(doc, schema.items as Json, v));
  return true;
}

const schemaOf = (doc: Json, name: string) =>
  ((doc.components as Json).schemas as Record<string, Json>)[name];
const propertiesOf = (doc: Json, name: string) =>
  Object.keys((schemaOf(doc, name)?.properties ?? {}) as Json);

describe('what @fastify/swagger generates from the CRM routes', () => {
  it('has each generic route once, with the shapes it declares, and the transform leaves no {plural}', () => {
    expect(Object.keys(generated.paths as Json).sort()).toEqual([
      '/crm/v1/{plural}',
      '/crm/v1/{plural}/aggregate',
      '/crm/v1/{plural}/{id}',
    ]);
    expect(operations(generated).map(({ op }) => op.operationId)).toEqual(
      expect.arrayContaining([
        'listRecords',
        'getRecord',
        'aggregateRecords',
        'createRecord',
        'updateRecord',
        'deleteRecord',
      ]),
    );
    const list = ((generated.paths as Json)['/crm/v1/{plural}'] as Json).get as Json;
    const query = (list.parameters as Json[]).filter((p) => p.in === 'query').map((p) => p.name);
    expect(query).toEqual(['fields', 'filter', 'limit', 'cursor']);
    const problem = (list.responses as Record<string, Json>)['422']?.content as Json;
    expect(problem['application/problem+json']).toEqual({
      schema: { $ref: '#/components/schemas/Problem' },
    });
    expect(JSON.stringify(narrowOpenApi(generated, options))).not.toContain('{plural}');
  });
});

describe('narrowOpenApi: the whole API', () => {
  let doc: Json;
  beforeAll(() => {
    doc = narrowOpenApi(generated, options);
  });

  it('is a well-formed OpenAPI 3.1 document', () => {
    checkDocument(doc);
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('has every object, every configured field, the token endpoint and the audit API', () => {
    const paths = Object.keys(doc.paths as Json);
    for (const plural of ['accounts', 'contacts', 'opportunities', 'notes']) {
      expect(paths).toContain(`/crm/v1/${plural}`);
      expect(paths).toContain(`/crm/v1/${plural}/{id}`);
    }
    // Only an aggregate scope opens aggregates; the defaults have one, for opportunities.
    expect(paths.filter((p) => p.endsWith('/aggregate'))).toEqual(['/crm/v1/opportunities/aggregate']);
    expect(paths).toContain('/oauth/token');
    expect(paths).toContain('/audit/v1/events');
    expect(propertiesOf(doc, 'Contact')).toEqual(
      expect.arrayContaining(['id', 'first_name', 'email', 'phone', 'date_of_birth', 'national_id']),
    );
    // A field no fieldset names is never described, even if the connector has it.
    expect(propertiesOf(doc, 'Contact')).not.toContain('created_at');
    expect(propertiesOf(doc, 'NoteCreate').sort()).toEqual([
      'account_id',
      'body',
      'contact_id',
      'opportunity_id',
    ]);
  });

  it('types fields from metadata and marks masked ones as text or null', () => {
    const props = schemaOf(doc, 'Opportunity')?.properties as Record<string, Json>;
    expect(props.amount).toMatchObject({ type: ['number', 'null'], 'x-gatehouse-data-class': 'financial' });
    expect(props.close_date).toMatchObject({ type: ['string', 'null'], format: 'date' });
    const contact = schemaOf(doc, 'Contact')?.properties as Record<string, Json>;
    expect(contact.national_id).toMatchObject({ type: ['string', 'null'], 'x-gatehouse-data-class': 'pii' });
    expect(contact.date_of_birth?.type).toEqual(['string', 'null']);
  });

  it('answers every operation with problem+json for 401, 403, 422, 429 and 503', () => {
    const list = ((doc.paths as Json)['/crm/v1/contacts'] as Json).get as Json;
    expect(Object.keys(list.responses as Json).sort()).toEqual(['200', '401', '403', '422', '429', '503']);
    const get = ((doc.paths as Json)['/crm/v1/contacts/{id}'] as Json).get as Json;
    expect(Object.keys(get.responses as Json)).toContain('404');
    const limited = deref(doc, (list.responses as Json)['429']);
    expect(Object.keys(limited.content as Json)).toEqual(['application/problem+json']);
    expect(Object.keys(limited.headers as Json)).toContain('Retry-After');
  });

  it('describes OAuth 2 with token exchange and a bearer JWT', () => {
    const schemes = (doc.components as Json).securitySchemes as Record<string, Json>;
    expect(schemes.bearer_jwt).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(schemes.gatehouse_oauth).toMatchObject({
      type: 'oauth2',
      flows: { authorizationCode: { tokenUrl: `${serverUrl}/oauth/token` } },
      'x-gatehouse-token-exchange': { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' },
    });
    expect(String(schemes.gatehouse_oauth?.description)).toContain('RFC 8693');
  });

  it('describes the records the connector really returns', async () => {
    for (const object of ['account', 'contact', 'opportunity', 'note'] as CrmObject[]) {
      const name = object.charAt(0).toUpperCase() + object.slice(1);
      const fields = propertiesOf(doc, name).filter((f) => f !== 'id');
      const { records } = await crm.query(object, { fields, where: [], limit: 50 });
      expect(records.length).toBeGreaterThan(0);
      for (const record of records)
        expect(conforms(doc, { $ref: `#/components/schemas/${name}` }, record)).toBe(true);
    }
    expect(conforms(doc, schemaOf(doc, 'Contact') as Json, { id: 'x', first_name: 7 })).toBe(false);
    expect(conforms(doc, schemaOf(doc, 'NoteCreate') as Json, { body: 'hi', national_id: 'x' })).toBe(false);
  });

  it('refuses a server URL that is not http(s) as a programming mistake', () => {
    expect(() => narrowOpenApi(generated, { ...options, serverUrl: 'javascript:alert(1)' })).toThrow(
      TypeError,
    );
  });
});

describe('narrowOpenApi: narrowed to one app', () => {
  it('call-notes sees no opportunities, no national_id and only its own scopes', () => {
    const doc = narrowOpenApi(generated, {
      ...options,
      scopes: appScopes('call-notes'),
      app: { id: 'call-notes', clientId: 'call-notes' },
    });
    checkDocument(doc);
    const paths = Object.keys(doc.paths as Json);
    expect(paths.filter((p) => p.includes('opportunit'))).toEqual([]);
    expect(paths.filter((p) => p.startsWith('/audit'))).toEqual([]);
    expect(JSON.stringify(doc)).not.toContain('national_id');
    expect(JSON.stringify(doc)).not.toContain('date_of_birth');
    expect(schemaOf(doc, 'Opportunity')).toBeUndefined();
    expect(propertiesOf(doc, 'Contact').sort()).toEqual(
      ['account_id', 'email', 'first_name', 'id', 'last_name', 'phone', 'title'].sort(),
    );
    // write:contact.note opens the note fields for writing: create, update and delete.
    const notes = (doc.paths as Json)['/crm/v1/notes'] as Json;
    expect(Object.keys(notes).sort()).toEqual(['get', 'post']);
    expect(propertiesOf(doc, 'NoteCreate').sort()).toEqual(['account_id', 'body', 'contact_id']);
    const item = (doc.paths as Json)['/crm/v1/notes/{id}'] as Json;
    expect(Object.keys(item).sort()).toEqual(['delete', 'get', 'parameters', 'patch']);
    expect((notes.post as Json).security).toEqual([
      { gatehouse_oauth: ['write:contact.note'] },
      { bearer_jwt: [] },
    ]);
    // Changes are conditional: If-Match is required, a stale one answers 412, a missing one 428.
    for (const method of ['patch', 'delete']) {
      const op = item[method] as Json;
      expect(op.parameters).toMatchObject([{ in: 'header', name: 'if-match' }]);
      expect(Object.keys(op.responses as Json)).toEqual(expect.arrayContaining(['412', '428']));
    }
    const created = ((notes.post as Json).responses as Record<string, Json>)['201'] as Json;
    expect(Object.keys(created.headers as Json)).toEqual(['x-request-id', 'ETag', 'Location']);
    // Accounts are readable but not writable.
    expect(Object.keys((doc.paths as Json)['/crm/v1/accounts'] as Json)).toEqual(['get']);
    const oauth = ((doc.components as Json).securitySchemes as Record<string, Json>).gatehouse_oauth as Json;
    const scopes = Object.keys(((oauth.flows as Json).authorizationCode as Json).scopes as Json);
    expect(scopes.sort()).toEqual([...appScopes('call-notes')].sort());
    expect((doc.info as Json).title as string).toContain('call-notes');
  });

  it('pipeline-dashboard sees opportunities and their aggregates, no contacts and no writes', () => {
    const doc = narrowOpenApi(generated, { ...options, scopes: appScopes('pipeline-dashboard') });
    checkDocument(doc);
    const paths = Object.keys(doc.paths as Json);
    expect(paths).toContain('/crm/v1/opportunities/aggregate');
    expect(paths.filter((p) => p.includes('contacts') || p.includes('notes'))).toEqual([]);
    expect(operations(doc).filter(({ method }) => method !== 'get' && method !== 'post')).toEqual([]);
    expect(
      operations(doc).filter(({ method, path }) => method === 'post' && path !== '/oauth/token'),
    ).toEqual([]);
    const aggregate = ((doc.paths as Json)['/crm/v1/opportunities/aggregate'] as Json).get as Json;
    const metric = (aggregate.parameters as Json[]).find((p) => p.name === 'metric') as Json;
    expect(((metric.schema as Json).items as Json).enum).toEqual([
      'count',
      'sum(amount)',
      'avg(amount)',
      'min(amount)',
      'max(amount)',
      'min(close_date)',
      'max(close_date)',
    ]);
    const groupBy = (aggregate.parameters as Json[]).find((p) => p.name === 'group_by') as Json;
    // A date is grouped by month only (view.ts aggregateMonthFields).
    expect((groupBy.schema as Json).enum).toEqual(['owner', 'stage', 'amount', 'close_date:month']);
    const group = ((schemaOf(doc, 'OpportunityAggregate')?.properties as Json).groups as Json).items as Json;
    expect(Object.keys(group.properties as Json)).toEqual(
      expect.arrayContaining(['stage', 'count', 'sum_amount', 'avg_amount']),
    );
    expect(aggregate.security).toEqual([
      { gatehouse_oauth: ['read:opportunity.aggregate'] },
      { bearer_jwt: [] },
    ]);
  });

  it('an aggregate scope alone opens aggregates, never records', () => {
    const doc = narrowOpenApi(generated, { ...options, scopes: ['read:opportunity.aggregate'] });
    checkDocument(doc);
    expect(Object.keys(doc.paths as Json).sort()).toEqual([
      '/crm/v1/opportunities/aggregate',
      '/oauth/token',
    ]);
    expect(schemaOf(doc, 'Opportunity')).toBeUndefined();
  });

  it('an app with no CRM scope has only the token endpoint; unknown scopes are ignored', () => {
    const doc = narrowOpenApi(generated, { ...options, scopes: ['admin', 'read:contact.nonexistent'] });
    checkDocument(doc);
    expect(Object.keys(doc.paths as Json)).toEqual(['/oauth/token']);
  });

  it('a console with audit:read sees the audit API', () => {
    const doc = narrowOpenApi(generated, { ...options, scopes: ['audit:read'] });
    checkDocument(doc);
    expect(Object.keys(doc.paths as Json)).toContain('/audit/v1/proof/consistency');
  });
});

describe('GET /openapi.json', () => {
  const eventOf = async (requestId: string) =>
    (await audit.events({ request_id: requestId })).records.map((r) => r.event);

  it('serves the whole document', async () => {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    const doc = response.json() as Json;
    checkDocument(doc);
    expect(Object.keys(doc.paths as Json)).toContain('/crm/v1/opportunities');
  });

  it('serves one app’s document narrowed to its approved scopes', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/openapi.json?app=call-notes',
      headers: { authorization: 'app call-notes' },
    });
    expect(response.statusCode).toBe(200);
    const doc = response.json() as Json;
    checkDocument(doc);
    expect(Object.keys(doc.paths as Json).some((p) => p.includes('opportunities'))).toBe(false);
    expect(response.body).not.toContain('national_id');
    expect(lookups).toContain('call-notes');
  });

  it('answers 404 problem+json for an unknown app', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/openapi.json?app=no-such-app',
      headers: { authorization: 'app console' },
    });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('answers 422 for a malformed app id, a repeated app or an unknown parameter, without a lookup', async () => {
    const before = lookups.length;
    for (const url of [
      '/openapi.json?app=../../etc/passwd',
      `/openapi.json?app=${'a'.repeat(65)}`,
      '/openapi.json?app=call-notes&app=pipeline-dashboard',
      '/openapi.json?scope=admin',
    ]) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(422);
      expect(response.json()).toMatchObject({ code: 'INVALID_INPUT' });
    }
    expect(lookups.length).toBe(before);
  });

  it('records every document request in the audit trail, served or refused, attributed when a token came', async () => {
    const cases = [
      { id: 'openapi-whole', url: '/openapi.json', auth: undefined, status: 200 },
      { id: 'openapi-own', url: '/openapi.json?app=call-notes', auth: 'app call-notes', status: 200 },
      {
        id: 'openapi-other',
        url: '/openapi.json?app=pipeline-dashboard',
        auth: 'app call-notes',
        status: 404,
      },
      { id: 'openapi-anon', url: '/openapi.json?app=call-notes', auth: undefined, status: 401 },
      { id: 'openapi-bad', url: '/openapi.json?scope=admin', auth: undefined, status: 422 },
    ];
    for (const { id, url, auth, status } of cases) {
      const headers = { 'x-request-id': id, ...(auth && { authorization: auth }) };
      expect((await app.inject({ method: 'GET', url, headers })).statusCode, id).toBe(status);
    }
    const events = Object.fromEntries(
      await Promise.all(cases.map(async ({ id }) => [id, await eventOf(id)] as const)),
    );
    for (const { id } of cases) {
      expect(events[id], id).toHaveLength(1);
      expect(events[id]?.[0]).toMatchObject({ action: 'openapi.read', resource_type: 'openapi' });
    }
    expect(events['openapi-whole']?.[0]).toMatchObject({ outcome: 'allow', actor_id: 'anonymous' });
    expect(events['openapi-own']?.[0]).toMatchObject({
      outcome: 'allow',
      app_id: 'call-notes',
      resource_id: 'call-notes',
    });
    expect(events['openapi-other']?.[0]).toMatchObject({
      outcome: 'deny',
      app_id: 'call-notes',
      resource_id: 'pipeline-dashboard',
      reason: 'NOT_FOUND',
    });
    expect(events['openapi-anon']?.[0]).toMatchObject({ outcome: 'deny', reason: 'TOKEN_MISSING' });
    expect(events['openapi-bad']?.[0]).toMatchObject({ outcome: 'deny', reason: 'INVALID_INPUT' });
  });
});
