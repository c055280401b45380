import type { FastifyInstance } from 'fastify';
import { crmObjects, type CrmObject, type FieldMeta, type ObjectMeta } from '../crm/index.js';
import { InputError, NotFound } from '../errors/index.js';
import { filterLimits } from './filter.js';
import { authenticate, governed, identifyQuietly, type PipelineDeps } from './pipeline.js';

/**
 * The OpenAPI 3.1 document of the gateway, served at /openapi.json so that a maker can import it as a
 * custom connector in a low-code builder. For one app (`?app=call-notes`) it is narrowed to what that
 * app's approved scopes open: objects it cannot touch have no paths, fields it cannot read have no
 * schema properties, and the operations list the scopes that allow them.
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
  /** Largest `limit` of a page (`config.gateway.maxPageSize`). */
  maxPageSize?: number;
}

/** Scopes that open an API rather than fields of an object. */
const auditScope = 'audit:read';
const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';
const aggregateFns = ['sum', 'avg', 'min', 'max'] as const;

const errorResponses = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  412: 'PreconditionFailed',
  422: 'InvalidInput',
  428: 'PreconditionRequired',
  429: 'RateLimited',
  503: 'Unavailable',
} as const;
type ErrorStatus = keyof typeof errorResponses;

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

export function buildOpenApi(opts: OpenApiOptions): Json {
  if (!/^https?:\/\/[^\s]+$/.test(opts.serverUrl)) throw new TypeError('serverUrl must be an http(s) URL');
  const server = opts.serverUrl.replace(/\/+$/, '');
  const inPlay = opts.scopes ?? [...Object.keys(opts.fieldsets), auditScope];
  const masked = new Set(opts.maskedFields ?? []);
  const maxPageSize = opts.maxPageSize ?? 200;

  const paths: Json = {};
  const schemas: Json = { ...commonSchemas() };
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
    Object.assign(paths, objectPaths(access));
  }
  paths['/oauth/token'] = tokenPath(opts.app?.clientId, Object.keys(scopeDescriptions));
  if (inPlay.includes(auditScope)) {
    scopeDescriptions[auditScope] = 'Read the audit trail, its checkpoints and proofs';
    Object.assign(paths, auditPaths());
  }

  return {
    openapi: '3.1.0',
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
      parameters: commonParameters(maxPageSize),
      responses: commonResponses(),
      headers: {
        RequestId: {
          description: 'The id of this request; the audit trail and the server log carry it too.',
          schema: { type: 'string' },
        },
        ETag: { description: 'The version of the record, for If-Match.', schema: { type: 'string' } },
        Location: { description: 'The path of the new record.', schema: { type: 'string' } },
        RetryAfter: {
          description: 'Seconds to wait before trying again.',
          schema: { type: 'integer', minimum: 1 },
        },
      },
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

function objectPaths(access: ObjectAccess): Json {
  const { name, meta, read, aggregate, write } = access;
  const plural = meta.plural;
  const Plural = plural.charAt(0).toUpperCase() + plural.slice(1);
  const ref = (schema: string) => ({ $ref: `#/components/schemas/${schema}` });
  const readSecurity = security(read.scopes);
  const writeSecurity = security(write.scopes);
  const readable = read.fields.map((field) => field.name);
  const fieldsParam = {
    name: 'fields',
    in: 'query',
    description: 'The fields to return (id always comes back); every field the scopes allow when absent.',
    style: 'form',
    explode: false,
    schema: { type: 'array', items: { type: 'string', enum: readable }, uniqueItems: true },
  };
  const collection: Json = {};
  const item: Json = {};
  const out: Json = {};

  if (read.scopes.length > 0) {
    collection.get = {
      operationId: `list${Plural}`,
      summary: `List ${plural}`,
      description: `A page of ${plural}, row-filtered by policy, in a stable order.`,
      tags: ['crm'],
      security: readSecurity,
      parameters: [
        fieldsParam,
        { $ref: '#/components/parameters/Filter' },
        { $ref: '#/components/parameters/Limit' },
        { $ref: '#/components/parameters/Cursor' },
      ],
      responses: {
        200: ok(`A page of ${plural}`, ref(`${name}List`)),
        ...errors(401, 403, 422, 429, 503),
      },
    };
    item.get = {
      operationId: `get${name}`,
      summary: `Get one ${meta.object}`,
      tags: ['crm'],
      security: readSecurity,
      parameters: [fieldsParam],
      responses: {
        200: ok(`The ${meta.object}`, ref(name), ['ETag']),
        ...errors(401, 403, 404, 422, 429, 503),
      },
    };
  }
  if (aggregate.scopes.length > 0) {
    out[`/crm/v1/${plural}/aggregate`] = {
      get: {
        operationId: `aggregate${Plural}`,
        summary: `Aggregate ${plural}`,
        description: `Counts and metrics per group of ${plural}, without raw records; groups too small to hide one record are suppressed.`,
        tags: ['crm'],
        security: security(aggregate.scopes),
        parameters: [
          {
            name: 'group_by',
            in: 'query',
            description: 'The field whose values form the groups; one group of everything when absent.',
            schema: {
              type: 'string',
              enum: aggregate.fields.flatMap((field) =>
                field.type === 'date' || field.type === 'datetime' ? [`${field.name}:month`] : [field.name],
              ),
            },
          },
          {
            name: 'metric',
            in: 'query',
            description:
              'What to compute per group, as in sum(amount); repeat for several. count when absent.',
            style: 'form',
            explode: true,
            schema: {
              type: 'array',
              maxItems: 8,
              items: { type: 'string', enum: ['count', ...metricsOf(aggregate.fields).map((m) => m.text)] },
            },
          },
          { $ref: '#/components/parameters/Filter' },
        ],
        responses: {
          200: ok(`Groups of ${plural}`, ref(`${name}Aggregate`)),
          ...errors(401, 403, 422, 429, 503),
        },
      },
    };
  }
  if (write.scopes.length > 0) {
    collection.post = {
      operationId: `create${name}`,
      summary: `Create a ${meta.object}`,
      description: 'Only the fields the write scopes allow; any other field is refused, never ignored.',
      tags: ['crm'],
      security: writeSecurity,
      requestBody: { required: true, content: { 'application/json': { schema: ref(`${name}Create`) } } },
      responses: {
        201: ok(`The ${meta.object} as stored`, ref(`${name}Written`), ['ETag', 'Location']),
        ...errors(401, 403, 422, 429, 503),
      },
    };
    item.patch = {
      operationId: `update${name}`,
      summary: `Update a ${meta.object}`,
      description: 'Send the ETag of the version you read as If-Match; a record changed since answers 412.',
      tags: ['crm'],
      security: writeSecurity,
      parameters: [{ $ref: '#/components/parameters/IfMatch' }],
      requestBody: { required: true, content: { 'application/json': { schema: ref(`${name}Update`) } } },
      responses: {
        200: ok(`The fields written`, ref(`${name}Written`), ['ETag']),
        ...errors(401, 403, 404, 412, 422, 428, 429, 503),
      },
    };
    item.delete = {
      operationId: `delete${name}`,
      summary: `Delete a ${meta.object}`,
      description:
        'Deletes what hangs off it as well (the notes of a contact, for example). Send the ETag of the version you read as If-Match.',
      tags: ['crm'],
      security: writeSecurity,
      parameters: [{ $ref: '#/components/parameters/IfMatch' }],
      responses: {
        204: {
          description: 'Deleted',
          headers: { 'x-request-id': { $ref: '#/components/headers/RequestId' } },
        },
        ...errors(401, 403, 404, 412, 422, 428, 429, 503),
      },
    };
  }
  if (Object.keys(collection).length > 0) out[`/crm/v1/${plural}`] = collection;
  if (Object.keys(item).length > 0) {
    out[`/crm/v1/${plural}/{id}`] = { parameters: [{ $ref: '#/components/parameters/RecordId' }], ...item };
  }
  return out;
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
  headers: { 'x-request-id': { $ref: '#/components/headers/RequestId' } },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

function auditPaths(): Json {
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
        ...errors(401, 403, 422, 429, 503),
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
          { $ref: '#/components/parameters/Cursor' },
        ],
        responses: {
          200: ok('A page of events', { $ref: '#/components/schemas/AuditEventPage' }),
          ...errors(401, 403, 422, 429, 503),
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
            headers: { 'x-request-id': { $ref: '#/components/headers/RequestId' } },
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...errors(401, 403, 429, 503),
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

/** One requirement per scope: any one of them is enough (a bearer token is checked the same way). */
function security(scopes: readonly string[]): Json[] {
  return [...scopes.map((scope) => ({ gatehouse_oauth: [scope] })), { bearer_jwt: [] }];
}

function ok(description: string, schema: Json, headers: readonly string[] = []): Json {
  return {
    description,
    headers: {
      'x-request-id': { $ref: '#/components/headers/RequestId' },
      ...Object.fromEntries(headers.map((name) => [name, { $ref: `#/components/headers/${name}` }])),
    },
    content: { 'application/json': { schema } },
  };
}

function errors(...statuses: ErrorStatus[]): Json {
  return Object.fromEntries(
    statuses.map((status) => [String(status), { $ref: `#/components/responses/${errorResponses[status]}` }]),
  );
}

function commonParameters(maxPageSize: number): Json {
  return {
    IfMatch: {
      name: 'If-Match',
      in: 'header',
      required: true,
      description: 'The ETag of the version the change is based on, from a read or the previous write.',
      schema: { type: 'string' },
    },
    RecordId: {
      name: 'id',
      in: 'path',
      required: true,
      description: 'The record id.',
      schema: { type: 'string', minLength: 1, maxLength: 64 },
    },
    Filter: {
      name: 'filter',
      in: 'query',
      description: [
        'Only records matching this expression (on top of the row filter, which it can never widen).',
        "Comparisons `field eq|ne|gt|ge|lt|le value` and `field in ('a', 'b')`, joined with `and`, `or`, `not`",
        "and parentheses. Values are 'single-quoted text' ('' for a quote), numbers, and dates as text",
        "('2025-06-30'). Only fields you may read unmasked can be filtered on. At most",
        `${filterLimits.maxLength} characters, ${filterLimits.maxComparisons} comparisons,`,
        `${filterLimits.maxDepth} levels of nesting and ${filterLimits.maxInValues} values in a list.`,
      ].join(' '),
      schema: { type: 'string', maxLength: filterLimits.maxLength },
      examples: {
        won: { value: "stage eq 'Closed Won' and (amount gt 10000 or owner eq 'bob@example.com')" },
      },
    },
    Limit: {
      name: 'limit',
      in: 'query',
      description: 'Records per page.',
      schema: { type: 'integer', minimum: 1, maximum: maxPageSize },
    },
    Cursor: {
      name: 'cursor',
      in: 'query',
      description: 'The `next_cursor` of the previous page, as given.',
      schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,256}$' },
    },
  };
}

function commonResponses(): Json {
  const problem = (description: string, retry = false): Json => ({
    description,
    headers: {
      'x-request-id': { $ref: '#/components/headers/RequestId' },
      ...(retry ? { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : {}),
    },
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  });
  return {
    BadRequest: problem('The request is malformed (OAuth errors carry `error` and `error_description` too).'),
    Unauthorized: problem('No access token, or an invalid, expired or revoked one.'),
    Forbidden: problem('Denied by policy or outside the granted scopes; the body names the rule.'),
    NotFound: problem('No such record, or one this caller may not see (the two look the same).'),
    PreconditionFailed: problem('The record changed since the version named in If-Match; read it again.'),
    InvalidInput: problem('A parameter or field value is not valid; the body names it.'),
    PreconditionRequired: problem('A change needs If-Match with the ETag of the version it is based on.'),
    RateLimited: problem('A rate limit or quota was reached.', true),
    Unavailable: problem('A dependency is down and the request was refused safely.', true),
  };
}

function commonSchemas(): Json {
  return {
    Problem: {
      type: 'object',
      description: 'RFC 7807 problem details.',
      properties: {
        type: { type: 'string', format: 'uri' },
        title: { type: 'string' },
        status: { type: 'integer' },
        detail: { type: 'string' },
        code: { type: 'string', description: 'A stable Gatehouse error code, e.g. POLICY_DENIED.' },
        instance: { type: 'string', description: 'The request id.' },
        error: { type: 'string', description: 'The OAuth error code, on the token endpoint.' },
        error_description: { type: 'string' },
      },
      required: ['type', 'title', 'status', 'detail', 'code'],
    },
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

export interface OpenApiRouteDeps extends Omit<OpenApiOptions, 'scopes' | 'app'>, PipelineDeps {
  /** An app's approved scopes (and client id), or undefined when there is no such app to describe. */
  lookupApp: (appId: string) => Promise<{ scopes: readonly string[]; clientId?: string } | undefined>;
}

const appIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * `GET /openapi.json` (every configured scope) and `GET /openapi.json?app=ID` (one app's scopes).
 * Audited as `openapi.read` like every other request, served or refused: a probe for other apps'
 * documents shows in the trail, and no document goes out unrecorded.
 */
export function registerOpenApiRoute(app: FastifyInstance, deps: OpenApiRouteDeps): void {
  const { lookupApp, ...options } = deps;
  // The whole document depends on configuration only: build it once, check it at start-up.
  const whole = JSON.stringify(buildOpenApi(options));

  app.get<{ Querystring: Record<string, unknown> }>('/openapi.json', async (request, reply) => {
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
      const document = buildOpenApi({
        ...options,
        scopes: found.scopes,
        app: { id: appId, clientId: found.clientId },
      });
      return { text: JSON.stringify(document), cacheControl: 'no-cache' };
    });
    const { text, cacheControl } = answer as { text: string; cacheControl: string };
    return reply.type('application/json; charset=utf-8').header('cache-control', cacheControl).send(text);
  });
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
