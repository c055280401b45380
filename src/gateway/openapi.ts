import { isDeepStrictEqual } from 'node:util';
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { crmObjects, type CrmObject, type FieldMeta, type ObjectMeta } from '../crm/index.js';
import { InputError, NotFound } from '../errors/index.js';
import { authenticate, governed, identifyQuietly } from './pipeline.js';
import type { GatewayDeps } from './request-stages.js';

/**
 * The OpenAPI 3.1 document of the gateway, served at /openapi.json so that a maker can import it as a
 * custom connector in a low-code builder. @fastify/swagger generates it from the shapes the CRM routes
 * declare (shapes.ts); narrowOpenApi is our one transform over it: the generic `{plural}` routes become
 * one set of paths per object with that object's record shapes, and for one app (`?app=call-notes`)
 * only what its approved scopes open: objects it cannot touch have no paths, fields it cannot read have
 * no schema properties, and the operations list the scopes that allow them.
 *
 * The document describes; it grants nothing. The gateway checks every request against the token's
 * scopes whatever a client read here.
 */

type Json = Record<string, unknown>;

export interface OpenApiFieldset {
  readonly object: string;
  readonly fields: readonly string[];
}

export interface OpenApiOptions {
  /** The URL clients reach Gatehouse at, without a trailing slash. */
  serverUrl: string;
  /** Scope → fieldset, as in the configuration (`config.scopes`). */
  fieldsets: Readonly<Record<string, OpenApiFieldset>>;
  /** Narrow the document to these scopes (an app's approved scopes); every configured scope when absent. */
  scopes?: readonly string[];
  describe: (object: CrmObject) => ObjectMeta;
  /** `object.field` names that some role masks (e.g. `contact.phone`); their values may be text or null. */
  maskedFields?: Iterable<string>;
  /** The app the document is narrowed for, named in its title and as the `client_id` example. */
  app?: { id: string; clientId?: string };
}

/** Scopes that open an API rather than fields of an object. */
const auditScope = 'audit:read';
const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';
const aggregateFns = ['sum', 'avg', 'min', 'max'] as const;
const requestIdHeader: Json = {
  description: 'The id of this request; the audit trail and the server log carry it too.',
  schema: { type: 'string' },
};

interface Access {
  scopes: string[];
  fields: FieldMeta[];
}

/**
 * What an object offers the scopes in play: records to read, aggregates, records to write. As in the
 * gateway, a fieldset named `aggregate` (read:opportunity.aggregate) opens aggregates only, never records.
 */
interface ObjectAccess {
  meta: ObjectMeta;
  name: string;
  read: Access;
  aggregate: Access;
  write: Access;
}

const isAggregateScope = (scope: string) => scope.endsWith('.aggregate');

/** The document of the routes @fastify/swagger generated (`generated`), per object and narrowed to `opts.scopes`. */
export function narrowOpenApi(generated: Json, opts: OpenApiOptions): Json {
  if (!/^https?:\/\/[^\s]+$/.test(opts.serverUrl)) throw new TypeError('serverUrl must be an http(s) URL');
  const server = opts.serverUrl.replace(/\/+$/, '');
  const inPlay = opts.scopes ?? [...Object.keys(opts.fieldsets), auditScope];
  const masked = new Set(opts.maskedFields ?? []);
  const operations = generatedOperations(generated);

  const paths: Json = {};
  const components = (generated.components ?? {}) as Json;
  const schemas: Json = { ...(components.schemas as Json | undefined), ...commonSchemas() };
  const scopeDescriptions: Record<string, string> = {};

  for (const object of crmObjects) {
    const access = accessOf(object, opts, inPlay);
    if (!access) continue;
    for (const [verb, part] of [
      ['Read', access.read],
      ['Aggregate', access.aggregate],
      ['Write', access.write],
    ] as const) {
      for (const scope of part.scopes) {
        const fields = opts.fieldsets[scope]?.fields ?? [];
        scopeDescriptions[scope] = `${verb} ${access.meta.plural}: ${fields.join(', ')}`;
      }
    }
    Object.assign(schemas, objectSchemas(access, masked));
    Object.assign(paths, objectPaths(operations, access));
  }
  paths['/oauth/token'] = tokenPath(opts.app?.clientId, Object.keys(scopeDescriptions));
  if (inPlay.includes(auditScope)) {
    scopeDescriptions[auditScope] = 'Read the audit trail, its checkpoints and proofs';
    Object.assign(paths, auditPaths(operations));
  }
  const responses = shareProblemAnswers(paths);

  return {
    openapi: generated.openapi,
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: opts.app ? `Gatehouse CRM gateway for ${opts.app.id}` : 'Gatehouse CRM gateway',
      version: '1',
      summary: 'Governed access to CRM records: scoped, row-filtered, masked and audited.',
      description: [
        'Every call needs an access token from `POST /oauth/token` (token exchange, RFC 8693) or the',
        'authorization-code flow with PKCE, sent as `Authorization: Bearer <token>`. Records are',
        "row-filtered by policy and masked by the user's role; a record you may not see answers 404.",
        'Errors are RFC 7807 problem+json; every answer carries `x-request-id`.',
        opts.app
          ? `This document is narrowed to the objects and fields that the approved scopes of ${opts.app.id} open.`
          : 'This document lists every configured scope; `/openapi.json?app=<id>` narrows it to one app.',
      ].join(' '),
    },
    servers: [{ url: server }],
    tags: [
      { name: 'crm', description: 'CRM records through the gateway' },
      { name: 'oauth', description: 'Access tokens' },
      ...(inPlay.includes(auditScope)
        ? [{ name: 'audit', description: 'The tamper-evident audit trail' }]
        : []),
    ],
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: {
        gatehouse_oauth: {
          type: 'oauth2',
          description: [
            'Gatehouse access tokens (RFC 9068 JWTs, at most 15 minutes). Browser apps use the',
            'authorization-code flow with PKCE (S256, public client, no secret). Apps whose user is signed',
            'in already exchange the ID token for an access token at the token URL with',
            `grant_type=${tokenExchangeGrant}, subject_token_type=${idTokenType}, client_id and scope`,
            '(RFC 8693). The granted scopes are the requested ones that the app is approved for and the',
            'user may hold; asking for a scope the app was never approved for is invalid_scope.',
          ].join(' '),
          flows: {
            authorizationCode: {
              authorizationUrl: `${server}/oauth/authorize`,
              tokenUrl: `${server}/oauth/token`,
              refreshUrl: `${server}/oauth/token`,
              scopes: scopeDescriptions,
            },
          },
          'x-gatehouse-token-exchange': {
            tokenUrl: `${server}/oauth/token`,
            grant_type: tokenExchangeGrant,
            subject_token_type: idTokenType,
          },
        },
        bearer_jwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'An access token from POST /oauth/token, as `Authorization: Bearer <token>`.',
        },
      },
    },
  };
}

function accessOf(
  object: CrmObject,
  opts: OpenApiOptions,
  inPlay: readonly string[],
): ObjectAccess | undefined {
  const meta = opts.describe(object);
  const part = (action: 'read' | 'write', aggregate: boolean): Access => {
    const scopes = inPlay.filter(
      (scope) =>
        scope.startsWith(`${action}:`) &&
        isAggregateScope(scope) === aggregate &&
        opts.fieldsets[scope]?.object === object,
    );
    const names = new Set(scopes.flatMap((scope) => opts.fieldsets[scope]?.fields ?? []));
    // Metadata order, and only fields the connector knows: a configured name it lacks is never served.
    return { scopes, fields: meta.fields.filter((field) => field.name !== 'id' && names.has(field.name)) };
  };
  const read = part('read', false);
  const aggregate = part('read', true);
  const write = part('write', false);
  if (read.scopes.length + aggregate.scopes.length + write.scopes.length === 0) return undefined;
  return { meta, name: object.charAt(0).toUpperCase() + object.slice(1), read, aggregate, write };
}

function valueSchema(field: FieldMeta): Json {
  switch (field.type) {
    case 'number':
      return { type: 'number' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'datetime':
      return { type: 'string', format: 'date-time' };
    default:
      return { type: 'string' };
  }
}

function annotate(field: FieldMeta, schema: Json): Json {
  return { title: field.label, ...schema, 'x-gatehouse-data-class': field.dataClass };
}

/** The metrics the gateway computes over these fields: sums and averages of numbers, min and max of dates too. */
function metricsOf(fields: readonly FieldMeta[]): Array<{ text: string; key: string; field: FieldMeta }> {
  return fields.flatMap((field) => {
    const fns =
      field.type === 'number'
        ? aggregateFns
        : field.type === 'date' || field.type === 'datetime'
          ? (['min', 'max'] as const)
          : [];
    return fns.map((fn) => ({ text: `${fn}(${field.name})`, key: `${fn}_${field.name}`, field }));
  });
}

function objectSchemas(access: ObjectAccess, masked: ReadonlySet<string>): Json {
  const { name, meta, read, aggregate, write } = access;
  const out: Json = {};
  if (aggregate.scopes.length > 0) {
    // A group answers `{ <group_by field>: value, count, <fn>_<field>: value, ... }`.
    const properties: Json = {};
    for (const field of aggregate.fields) {
      const base = valueSchema(field);
      properties[field.name] = annotate(field, { ...base, type: [base.type, 'null'] });
      if (field.type === 'date' || field.type === 'datetime')
        properties[`${field.name}:month`] = { type: ['string', 'null'], description: 'The month, YYYY-MM.' };
    }
    properties.count = { type: 'integer', minimum: 0, description: 'Records in the group.' };
    for (const metric of metricsOf(aggregate.fields)) {
      const numeric = metric.field.type === 'number' || metric.text.startsWith('avg(');
      properties[metric.key] = {
        type: numeric ? ['number', 'null'] : ['string', 'null'],
        title: metric.text,
      };
    }
    out[`${name}Aggregate`] = {
      type: 'object',
      properties: {
        groups: { type: 'array', items: { type: 'object', properties, required: ['count'] } },
        suppressed_groups: {
          type: 'integer',
          minimum: 0,
          description: 'Groups left out because they hold too few records to hide one.',
        },
      },
      required: ['groups'],
    };
  }
  if (read.scopes.length > 0) {
    const properties: Json = { id: { type: 'string', title: 'Record ID', readOnly: true } };
    for (const field of read.fields) {
      const base = valueSchema(field);
      properties[field.name] = masked.has(`${meta.object}.${field.name}`)
        ? annotate(field, {
            type: ['string', 'null'],
            description: `${field.label}; masked for some roles (for example ***1234), or null.`,
          })
        : annotate(field, { ...base, type: [base.type, 'null'] });
    }
    out[name] = {
      type: 'object',
      description: `A ${meta.object} with the fields the scopes allow; a read returns the fields asked for and id.`,
      properties,
      required: ['id'],
    };
    out[`${name}List`] = {
      type: 'object',
      properties: {
        records: { type: 'array', items: { $ref: `#/components/schemas/${name}` } },
        next_cursor: {
          type: ['string', 'null'],
          description: 'Pass as `cursor` for the next page; null on the last page.',
        },
      },
      required: ['records', 'next_cursor'],
    };
  }
  if (write.scopes.length > 0) {
    const properties: Json = {};
    for (const field of write.fields) {
      const base = valueSchema(field);
      // References may be cleared; other fields take a value of their type.
      properties[field.name] = annotate(
        field,
        field.type === 'id' ? { ...base, type: ['string', 'null'] } : base,
      );
    }
    out[`${name}Create`] = { type: 'object', properties, additionalProperties: false };
    out[`${name}Update`] = { type: 'object', properties, additionalProperties: false, minProperties: 1 };
    const written: Json = { id: { type: 'string', readOnly: true } };
    for (const field of access.meta.fields) {
      if (properties[field.name] || ['account_id', 'territory', 'owner'].includes(field.name)) {
        const base = valueSchema(field);
        written[field.name] = annotate(field, { ...base, type: [base.type, 'null'] });
      }
    }
    out[`${name}Written`] = {
      type: 'object',
      description: 'The record as stored: id, the fields written and those taken from the parent account.',
      properties: written,
      required: ['id'],
    };
  }
  return out;
}

/**
 * The generated operations of the generic CRM routes (shapes.ts), by operationId: which scopes open
 * each for one object, whether it is named for many records, and the object's shapes of its body and answer.
 */
const crmOperations = [
  {
    id: 'aggregateRecords',
    many: true,
    part: 'aggregate',
    verb: 'aggregate',
    answer: 'Aggregate',
    body: undefined,
  },
  { id: 'listRecords', many: true, part: 'read', verb: 'list', answer: 'List', body: undefined },
  { id: 'getRecord', many: false, part: 'read', verb: 'get', answer: '', body: undefined },
  { id: 'createRecord', many: false, part: 'write', verb: 'create', answer: 'Written', body: 'Create' },
  { id: 'updateRecord', many: false, part: 'write', verb: 'update', answer: 'Written', body: 'Update' },
  { id: 'deleteRecord', many: false, part: 'write', verb: 'delete', answer: undefined, body: undefined },
] as const;

interface GeneratedOperation {
  path: string;
  method: string;
  op: Json;
}

/** The operations @fastify/swagger generated from the routes, by operationId. */
function generatedOperations(generated: Json): Map<string, GeneratedOperation> {
  const out = new Map<string, GeneratedOperation>();
  for (const [path, item] of Object.entries((generated.paths ?? {}) as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item)) {
      const id = (op as Json).operationId;
      if (typeof id === 'string') out.set(id, { path, method, op: op as Json });
    }
  }
  return out;
}

const summaries: Record<(typeof crmOperations)[number]['verb'], (meta: ObjectMeta) => Json> = {
  list: (meta) => ({
    summary: `List ${meta.plural}`,
    description: `A page of ${meta.plural}, row-filtered by policy, in a stable order.`,
  }),
  get: (meta) => ({ summary: `Get one ${meta.object}` }),
  aggregate: (meta) => ({
    summary: `Aggregate ${meta.plural}`,
    description: `Counts and metrics per group of ${meta.plural}, without raw records; groups too small to hide one record are suppressed.`,
  }),
  create: (meta) => ({
    summary: `Create a ${meta.object}`,
    description: 'Only the fields the write scopes allow; any other field is refused, never ignored.',
  }),
  update: (meta) => ({
    summary: `Update a ${meta.object}`,
    description: 'Send the ETag of the version you read as If-Match; a record changed since answers 412.',
  }),
  delete: (meta) => ({
    summary: `Delete a ${meta.object}`,
    description:
      'Deletes what hangs off it as well (the notes of a contact, for example). Send the ETag of the version you read as If-Match.',
  }),
};

/** One object's paths: the generated operations its scopes open, with its own shapes and enums. */
function objectPaths(generated: Map<string, GeneratedOperation>, access: ObjectAccess): Json {
  const { name, meta } = access;
  const Plural = meta.plural.charAt(0).toUpperCase() + meta.plural.slice(1);
  const ref = (schema: string) => ({ $ref: `#/components/schemas/${schema}` });
  const out: Record<string, Json> = {};
  for (const spec of crmOperations) {
    const found = generated.get(spec.id);
    const part = access[spec.part];
    if (!found || part.scopes.length === 0) continue;
    const op = structuredClone(found.op);
    const path = found.path.replace('{plural}', meta.plural);
    const params = ((op.parameters ?? []) as Json[]).filter((p) => p.name !== 'plural');
    const pathParams = params.filter((p) => p.in === 'path');
    const opParams = params
      .filter((p) => p.in !== 'path')
      .map((p) => narrowParameter(p, access, spec.part === 'aggregate'));
    const responses = op.responses as Record<string, Json>;
    for (const [status, response] of Object.entries(responses)) {
      const media = (response.content as Record<string, Json> | undefined)?.['application/json'];
      if (/^2/.test(status) && media && spec.answer !== undefined)
        media.schema = ref(`${name}${spec.answer}`);
    }
    const body = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.[
      'application/json'
    ];
    if (body && spec.body) body.schema = ref(`${name}${spec.body}`);
    const operation: Json = {
      ...op,
      operationId: `${spec.verb}${spec.many ? Plural : name}`,
      ...summaries[spec.verb](meta),
      security: security(part.scopes),
    };
    if (opParams.length > 0) operation.parameters = opParams;
    else delete operation.parameters;
    out[path] = {
      ...out[path],
      ...(pathParams.length > 0 && { parameters: pathParams }),
      [found.method]: operation,
    };
  }
  return out;
}

/** A query parameter as one object's caller may use it: the fields, groups and metrics it may name. */
function narrowParameter(param: Json, access: ObjectAccess, aggregate: boolean): Json {
  if (param.in !== 'query') return param;
  const fields = aggregate ? access.aggregate.fields : access.read.fields;
  switch (param.name) {
    case 'fields':
      return {
        ...param,
        style: 'form',
        explode: false,
        schema: {
          type: 'array',
          items: { type: 'string', enum: fields.map((field) => field.name) },
          uniqueItems: true,
        },
      };
    case 'group_by':
      return {
        ...param,
        // A date is grouped by month only (view.ts aggregateMonthFields).
        schema: {
          type: 'string',
          enum: fields.map((field) =>
            field.type === 'date' || field.type === 'datetime' ? `${field.name}:month` : field.name,
          ),
        },
      };
    case 'metric':
      return {
        ...param,
        style: 'form',
        explode: true,
        schema: {
          type: 'array',
          maxItems: 8,
          items: { type: 'string', enum: ['count', ...metricsOf(fields).map((m) => m.text)] },
        },
      };
    default:
      return param;
  }
}

function tokenPath(clientId: string | undefined, scopes: readonly string[]): Json {
  return {
    post: {
      operationId: 'exchangeToken',
      summary: 'Exchange an ID token for an access token (RFC 8693)',
      tags: ['oauth'],
      security: [],
      requestBody: {
        required: true,
        content: {
          'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenRequest' } },
        },
      },
      responses: {
        200: ok('An access token', { $ref: '#/components/schemas/TokenResponse' }),
        ...Object.fromEntries([400, 401, 429, 503].map((status) => [String(status), oauthErrorResponse])),
      },
      'x-gatehouse-example': {
        grant_type: tokenExchangeGrant,
        subject_token_type: idTokenType,
        ...(clientId ? { client_id: clientId } : {}),
        scope: scopes.join(' '),
      },
    },
  };
}

/** RFC 6749 §5.2: OAuth errors are application/json (clients refuse other types), problem members too. */
const oauthErrorResponse: Json = {
  description: 'An OAuth error: `error` and `error_description` (RFC 6749 §5.2) with the problem members.',
  headers: { 'x-request-id': requestIdHeader },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

function auditPaths(generated: Map<string, GeneratedOperation>): Json {
  const security = [{ gatehouse_oauth: [auditScope] }, { bearer_jwt: [] }];
  const count = (name: string, description: string) => ({
    name,
    in: 'query',
    required: true,
    description,
    schema: { type: 'integer', minimum: 0 },
  });
  const proof = (operationId: string, summary: string, params: Json[]) => ({
    get: {
      operationId,
      summary,
      tags: ['audit'],
      security,
      parameters: params,
      responses: {
        200: ok('Hashes in RFC 9162 order', { $ref: '#/components/schemas/ProofHashes' }),
        ...refusals(generated, '401', '403', '422', '429', '503'),
      },
    },
  });
  const text = (name: string) => ({ name, in: 'query', schema: { type: 'string', maxLength: 128 } });
  return {
    '/audit/v1/events': {
      get: {
        operationId: 'listAuditEvents',
        summary: 'List audit events with their leaf hashes',
        tags: ['audit'],
        security,
        parameters: [
          text('request_id'),
          text('app_id'),
          { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          { name: 'cursor', in: 'query', schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,512}$' } },
        ],
        responses: {
          200: ok('A page of events', { $ref: '#/components/schemas/AuditEventPage' }),
          ...refusals(generated, '401', '403', '422', '429', '503'),
        },
      },
    },
    '/audit/v1/checkpoint': {
      get: {
        operationId: 'getAuditCheckpoint',
        summary: 'The latest signed checkpoint (C2SP tlog-checkpoint, Ed25519)',
        tags: ['audit'],
        security,
        responses: {
          200: {
            description: 'A signed note',
            headers: { 'x-request-id': requestIdHeader },
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...refusals(generated, '401', '403', '429', '503'),
        },
      },
    },
    '/audit/v1/proof/inclusion': proof('getInclusionProof', 'Inclusion proof of one event', [
      count('index', 'The index of the event'),
      count('size', 'The tree size of a checkpoint'),
    ]),
    '/audit/v1/proof/consistency': proof('getConsistencyProof', 'Consistency proof between two tree sizes', [
      count('from', 'The older tree size'),
      count('to', 'The newer tree size'),
    ]),
  };
}

/** The components the problem answers of every operation share, by status. */
const problemAnswerNames: Readonly<Record<string, string>> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  412: 'PreconditionFailed',
  422: 'InvalidInput',
  428: 'PreconditionRequired',
  429: 'RateLimited',
  503: 'Unavailable',
};

/**
 * Every route declares its problem answers in full; the document names each once (components.responses)
 * and refers to it, so clients get one type per answer. An answer unlike the first of its status stays
 * where it is.
 */
function shareProblemAnswers(paths: Json): Json {
  const shared: Record<string, Json> = {};
  for (const item of Object.values(paths) as Json[]) {
    for (const op of Object.values(item) as Json[]) {
      const answers = op.responses as Record<string, Json> | undefined;
      for (const [status, response] of Object.entries(answers ?? {})) {
        const name = problemAnswerNames[status];
        const content = response.content as Json | undefined;
        if (!name || !content?.['application/problem+json']) continue;
        shared[name] ??= response;
        if (isDeepStrictEqual(shared[name], response)) {
          answers![status] = { $ref: `#/components/responses/${name}` };
        }
      }
    }
  }
  return shared;
}

/** One requirement per scope: any one of them is enough (a bearer token is checked the same way). */
function security(scopes: readonly string[]): Json[] {
  return [...scopes.map((scope) => ({ gatehouse_oauth: [scope] })), { bearer_jwt: [] }];
}

function ok(description: string, schema: Json): Json {
  return {
    description,
    headers: { 'x-request-id': requestIdHeader },
    content: { 'application/json': { schema } },
  };
}

/** The problem answers the CRM routes declare, for the token and audit paths described beside them. */
function refusals(generated: Map<string, GeneratedOperation>, ...statuses: string[]): Json {
  const declared = [...generated.values()].map(({ op }) => op.responses as Record<string, Json>);
  return Object.fromEntries(
    statuses.flatMap((status) => {
      const found = declared.find((responses) => responses[status])?.[status];
      return found ? [[status, found]] : [];
    }),
  );
}

function commonSchemas(): Json {
  return {
    TokenRequest: {
      type: 'object',
      properties: {
        grant_type: { type: 'string', enum: [tokenExchangeGrant] },
        subject_token: { type: 'string', description: 'The ID token of the signed-in user.' },
        subject_token_type: { type: 'string', enum: [idTokenType] },
        client_id: { type: 'string', description: "The app's client id." },
        scope: { type: 'string', description: 'Space-separated scopes.' },
      },
      required: ['grant_type', 'subject_token', 'subject_token_type', 'client_id'],
    },
    TokenResponse: {
      type: 'object',
      properties: {
        access_token: { type: 'string' },
        issued_token_type: { type: 'string' },
        token_type: { type: 'string' },
        expires_in: { type: 'integer', maximum: 900 },
        scope: { type: 'string', description: 'The granted scopes.' },
      },
      required: ['access_token', 'token_type', 'expires_in'],
    },
    AuditEventPage: {
      type: 'object',
      properties: {
        records: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              index: { type: 'integer' },
              leaf_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
              event: { type: 'object' },
            },
          },
        },
        next_cursor: { type: ['string', 'null'] },
      },
      required: ['records', 'next_cursor'],
    },
    ProofHashes: {
      type: 'object',
      properties: { hashes: { type: 'array', items: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
      required: ['hashes'],
    },
  };
}

/** What the document needs beyond the gateway's own dependencies. */
export interface OpenApiDeps {
  /** The URL clients reach Gatehouse at, without a trailing slash. */
  serverUrl: string;
  /** An app's approved scopes (and client id), or undefined when there is no such app to describe. */
  lookupApp: (appId: string) => Promise<{ scopes: readonly string[]; clientId?: string } | undefined>;
}

const appIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * @fastify/swagger in the gateway's scope (the admin API has its own document), and `GET /openapi.json`
 * (every configured scope) and `GET /openapi.json?app=ID` (one app's scopes). Audited as `openapi.read`
 * like every other request, served or refused: a probe for other apps' documents shows in the trail,
 * and no document goes out unrecorded.
 */
export async function registerOpenApiRoute(
  gateway: FastifyInstance,
  deps: GatewayDeps & OpenApiDeps,
): Promise<void> {
  await gateway.register(swagger, {
    openapi: { openapi: '3.1.0', info: { title: 'Gatehouse CRM gateway', version: '1' } },
    // A shared shape (Problem) becomes the component its $id names.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  const { config, crm, lookupApp } = deps;
  const options: OpenApiOptions = {
    serverUrl: deps.serverUrl,
    fieldsets: config.scopes,
    describe: (object) => crm.describe(object),
    maskedFields: Object.values(config.roles).flatMap((role) => Object.keys(role.masks)),
  };
  const generated = () => gateway.swagger() as unknown as Json;
  // The whole document depends on the routes and configuration only: built once, checked at start-up.
  let whole = '';
  gateway.addHook('onReady', async () => {
    whole = JSON.stringify(narrowOpenApi(generated(), options));
  });

  gateway.get<{ Querystring: Record<string, unknown> }>(
    '/openapi.json',
    { schema: { hide: true } },
    async (request, reply) => {
      const answer = await governed(deps, request, reply, 'openapi.read', async (trail) => {
        trail.resourceType = 'openapi';
        const appId = documentApp(request.query ?? {});
        if (appId === undefined) {
          await identifyQuietly(deps, request, trail);
          trail.reason = 'document returned';
          return { text: whole, cacheControl: 'public, max-age=300' };
        }
        trail.resourceId = appId;
        // An app's document tells its scopes and client id: only that app (or an admin) may read it, and
        // another app's id answers exactly like an unknown one, so the catalog cannot be enumerated.
        const caller = await authenticate(deps, request, trail);
        const found =
          caller.appId === appId || caller.scopes.includes('admin') ? await lookupApp(appId) : undefined;
        if (!found) throw new NotFound('no such app');
        trail.reason = 'app document returned';
        // An app's scopes change on approval or suspension: never cache its document for long.
        const document = narrowOpenApi(generated(), {
          ...options,
          scopes: found.scopes,
          app: { id: appId, clientId: found.clientId },
        });
        return { text: JSON.stringify(document), cacheControl: 'no-cache' };
      });
      const { text, cacheControl } = answer as { text: string; cacheControl: string };
      return reply.type('application/json; charset=utf-8').header('cache-control', cacheControl).send(text);
    },
  );
}

/** The app a document request names, if any; 422 for anything but one well-formed `app`. */
function documentApp(query: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(query)) {
    if (key !== 'app') {
      throw new InputError(`unknown query parameter ${key.slice(0, 64)}; allowed: app`, {
        parameter: key.slice(0, 64),
      });
    }
  }
  const appId = query.app;
  if (appId === undefined) return undefined;
  if (typeof appId !== 'string' || !appIdPattern.test(appId)) {
    throw new InputError('app must be an app id', { parameter: 'app' });
  }
  return appId;
}
