import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance, FastifyRequest, FastifySchema, FastifySchemaCompiler } from 'fastify';
import { InputError } from '../errors/index.js';
import { filterLimits } from './filter.js';

/**
 * The CRM routes' declared shapes (CONTRACT.md "Gateway"). Fastify compiles each once: the request
 * shapes into TypeBox checks, the answers into fast-json-stringify serialisers; @fastify/swagger turns
 * them into /openapi.json, which openapi.ts narrows per object and per app.
 *
 * The routes are generic over `:plural`, so a record is an open object here: the serialiser writes
 * every member as it is (masked text, null, encrypted values), and the document's per-object record
 * shapes come from the connector's metadata and the scopes (openapi.ts). The request shapes are no
 * stricter than the stages that parse the same input with their clearer messages (request-stages.ts,
 * aggregate.ts, writes.ts); they run after those stages, as a backstop, so a caller is refused exactly
 * as before and only once authenticated.
 */
export function declareShapes(gateway: FastifyInstance): void {
  gateway.setValidatorCompiler(compileShape);
  gateway.addHook('onRoute', (route) => {
    if (route.schema) route.attachValidation = true;
  });
  gateway.addSchema(Problem);
}

/** Throws the refusal of a request that does not fit its route's declared shapes. */
export function rejectInvalid(request: FastifyRequest): void {
  if (request.validationError) throw request.validationError;
}

/**
 * A query string arrives as text: `limit=20` is checked as the integer it stands for, on a copy, so the
 * stages still parse what the client sent. Nothing else is coerced or removed.
 */
const compileShape: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema);
  const asText = httpPart === 'querystring';
  return (value) => {
    const seen: unknown = asText ? Value.Convert(schema, { ...(value as object) }) : value;
    return check.Check(seen) ? { value } : { error: refusalOf(check.Errors(seen).First()) };
  };
};

function refusalOf(error: ValueError | undefined): InputError {
  const where = error?.path.slice(1).split('/').join('.') || 'body';
  const rule: unknown = error?.schema.description;
  const message = typeof rule === 'string' ? rule : `${where}: ${error?.message ?? 'invalid'}`;
  return new InputError(message, { parameter: where.slice(0, 64) });
}

/** Text or null, as one JSON Schema type (fast-json-stringify needs no branch for it). */
const TextOrNull = (description: string) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], description });

/** A CRM record as the gateway answers it: `id` and the fields this caller may read, as shown to them. */
const CrmRecord = Type.Object(
  {},
  {
    additionalProperties: true,
    description: 'A record with its id and the fields the scopes allow.',
  },
);

/** RFC 7807 problem details; members beyond these (the rule, the incident, the parameter) pass as they are. */
const Problem = Type.Object(
  {
    type: Type.String({ format: 'uri' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'A stable Gatehouse error code, e.g. POLICY_DENIED.' }),
    instance: Type.Optional(Type.String({ description: 'The request id.' })),
    error: Type.Optional(Type.String({ description: 'The OAuth error code, on the token endpoint.' })),
    error_description: Type.Optional(Type.String()),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 7807 problem details.' },
);

const requestId = {
  type: 'string',
  description: 'The id of this request; the audit trail and the server log carry it too.',
};
const etag = { type: 'string', description: 'The version of the record, for If-Match.' };
const location = { type: 'string', description: 'The path of the new record.' };
const retryAfter = { type: 'integer', minimum: 1, description: 'Seconds to wait before trying again.' };

const problemAnswers = {
  401: 'No access token, or an invalid, expired or revoked one.',
  403: 'Denied by policy or outside the granted scopes; the body names the rule.',
  404: 'No such record, or one this caller may not see (the two look the same).',
  412: 'The record changed since the version named in If-Match; read it again.',
  422: 'A parameter or field value is not valid; the body names it.',
  428: 'A change needs If-Match with the ETag of the version it is based on.',
  429: 'A rate limit or quota was reached.',
  503: 'A dependency is down and the request was refused safely.',
} as const;
type ProblemStatus = keyof typeof problemAnswers;

function problems(...statuses: ProblemStatus[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: problemAnswers[status],
        headers: {
          'x-request-id': requestId,
          ...((status === 429 || status === 503) && { 'Retry-After': retryAfter }),
        },
        content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
      },
    ]),
  );
}

function answer(description: string, schema: TSchema, headers: Record<string, object> = {}) {
  return {
    description,
    headers: { 'x-request-id': requestId, ...headers },
    content: { 'application/json': { schema } },
  };
}

const pluralParam = Type.String({
  description: 'The CRM object: accounts, contacts, opportunities or notes.',
});
const recordParams = Type.Object({
  plural: pluralParam,
  id: Type.String({ description: 'The record id.' }),
});
const collectionParams = Type.Object({ plural: pluralParam });

const fields = Type.Optional(
  Type.String({
    description:
      'The fields to return, comma-separated (id always comes back); every field the scopes allow when absent.',
  }),
);
// The filter parser (filter.ts) bounds its length and says so; the shape only describes it.
const filterText = Type.String();
const filter = Type.Optional(
  Type.Union([filterText, Type.Array(filterText, { maxItems: 8 })], {
    description: [
      'Only records matching this expression (on top of the row filter, which it can never widen).',
      "Comparisons `field eq|ne|gt|ge|lt|le value` and `field in ('a', 'b')`, joined with `and`, `or`, `not`",
      "and parentheses. Values are 'single-quoted text' ('' for a quote), numbers, and dates as text",
      "('2025-06-30'). Only fields you may read unmasked can be filtered on. At most",
      `${filterLimits.maxLength} characters, ${filterLimits.maxComparisons} comparisons,`,
      `${filterLimits.maxDepth} levels of nesting and ${filterLimits.maxInValues} values in a list.`,
    ].join(' '),
  }),
);

/** An If-Match header: described here, required and checked by the write stages (428 and 412). */
const ifMatch = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      description: 'The ETag of the version the change is based on, from a read or the previous write.',
    }),
  ),
});

const body = Type.Object(
  {},
  { additionalProperties: true, description: 'Field values; only the fields the write scopes allow.' },
);

/** The shapes of each CRM route; `maxPageSize` is `config.gateway.maxPageSize`. */
export function crmRouteShapes(maxPageSize: number) {
  const shape = (operationId: string, schema: FastifySchema): FastifySchema => ({
    operationId,
    tags: ['crm'],
    ...schema,
  });
  return {
    read: shape('getRecord', {
      params: recordParams,
      querystring: Type.Object({ fields }),
      response: {
        200: answer('The record', CrmRecord, { ETag: etag }),
        ...problems(401, 403, 404, 422, 429, 503),
      },
    }),
    list: shape('listRecords', {
      params: collectionParams,
      querystring: Type.Object({
        fields,
        filter,
        limit: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: maxPageSize,
            description: `limit must be at most ${maxPageSize}`,
          }),
        ),
        cursor: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9_-]{1,512}$',
            description: 'The `next_cursor` of the previous page, as given.',
          }),
        ),
      }),
      response: {
        200: answer(
          'A page of records',
          Type.Object(
            {
              records: Type.Array(CrmRecord),
              next_cursor: TextOrNull('Pass as `cursor` for the next page; null on the last page.'),
            },
            { additionalProperties: true },
          ),
        ),
        ...problems(401, 403, 422, 429, 503),
      },
    }),
    aggregate: shape('aggregateRecords', {
      params: collectionParams,
      querystring: Type.Object({
        group_by: Type.Optional(
          Type.String({
            description: 'The field whose values form the groups; one group of everything when absent.',
          }),
        ),
        metric: Type.Optional(
          Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 8 })], {
            description:
              'What to compute per group, as in sum(amount); repeat for several. count when absent.',
          }),
        ),
        filter,
      }),
      response: {
        200: answer(
          'Groups of records',
          Type.Object(
            {
              groups: Type.Array(Type.Object({}, { additionalProperties: true })),
              suppressed_groups: Type.Integer({
                minimum: 0,
                description: 'Groups left out because they hold too few records to hide one.',
              }),
            },
            { additionalProperties: true },
          ),
        ),
        ...problems(401, 403, 422, 429, 503),
      },
    }),
    create: shape('createRecord', {
      params: collectionParams,
      body,
      response: {
        201: answer('The record as stored', CrmRecord, { ETag: etag, Location: location }),
        ...problems(401, 403, 422, 429, 503),
      },
    }),
    update: shape('updateRecord', {
      params: recordParams,
      headers: ifMatch,
      body,
      response: {
        200: answer('The fields written', CrmRecord, { ETag: etag }),
        ...problems(401, 403, 404, 412, 422, 428, 429, 503),
      },
    }),
    delete: shape('deleteRecord', {
      params: recordParams,
      headers: ifMatch,
      response: {
        204: { description: 'Deleted', type: 'null', headers: { 'x-request-id': requestId } },
        ...problems(401, 403, 404, 412, 422, 428, 429, 503),
      },
    }),
  };
}
