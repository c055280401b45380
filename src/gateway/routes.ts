import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { objectFromPlural, type CrmConnector, type CrmObject, type CrmRecord } from '../crm/index.js';
import { DependencyUnavailable, InputError, NotFound } from '../errors/index.js';
import type { Principal } from '../policy/index.js';
import { aggregateAsked, parseAggregateQuery, planAggregate, runAggregate } from './aggregate.js';
import {
  aggregateQueryFields,
  authorizeCreate,
  authorizeExisting,
  filterFieldNames,
  listAction,
  policyAsk,
} from './authorize.js';
import { breakerConnector } from './connector.js';
import { consentCheck } from './consent.js';
import { openCursor, sealCursor } from './cursor.js';
import { printFilter } from './filter.js';
import { DlpTally, screenIncoming } from './dlp.js';
import { bulkGuardStage } from './guard.js';
import { writeOnce, type WriteKeys } from './idempotency.js';
import {
  authenticate,
  governed,
  recordIntent,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
  type Trail,
} from './pipeline.js';
import { recordRefOf } from './policy.js';
import {
  etagOf,
  fetchRecord,
  fetchVisiblePage,
  parseFilters,
  planRead,
  protectAll,
  protector,
  readReason,
} from './stages.js';
import { readerView } from './view.js';
import {
  checkVersion,
  createValues,
  currentEtag,
  jsonBody,
  planDelete,
  planWrite,
  requireConsentedContact,
  requireIfMatch,
  stale,
  writeAnswer,
} from './writes.js';

export interface GatewayDeps extends PipelineDeps {
  config: Config;
  crm: CrmConnector;
  /** The key list cursors are authenticated with (cursor.ts), from the key service. */
  cursorKey: Uint8Array;
  /** Idempotency-Key claims of writes (idempotency.ts). */
  writeKeys: WriteKeys;
}

type Params = { plural: string; id: string };
type Query = Record<string, unknown>;

const fieldName = /^[a-z_]{1,64}$/;
const cursorPattern = /^[A-Za-z0-9_-]{1,512}$/;

/**
 * The CRM data plane (CONTRACT.md "Gateway"). Every route runs its stages inside governed(), so every
 * answer, allowed or refused, has its audit event; a request refused before its handler ran (a body too
 * large, not JSON, malformed) is recorded by this scope's error handler.
 */
export function registerGatewayRoutes(app: FastifyInstance, deps: GatewayDeps): void {
  const { config, policy } = deps;
  // Every CRM call goes through the connector's breaker: a failing CRM is refused fast (503).
  const crm = breakerConnector(deps.crm, deps.limits.breaker(deps.crm.name));
  const guard = bulkGuardStage(crm, deps.limits, config.gateway.tableSizeCacheSeconds, deps.appPlan);
  // authorize + shape of a write, under the policy's row filter for writing the fields sent.
  const writePlan = (
    principal: Principal,
    object: CrmObject,
    request: FastifyRequest,
    mode: 'create' | 'update',
  ) =>
    planWrite(config, principal, object, jsonBody(request), mode, (fields) =>
      policy.rows(policyAsk(request, principal, 'write', object, fields, 1)),
    );
  const consentedContact = (request: FastifyRequest, principal: Principal, values: CrmRecord) =>
    requireConsentedContact(crm, config, principal, values, () =>
      policy.rows(policyAsk(request, principal, 'read', 'contact', [], 1)),
    );
  // authorize one existing record for a write: visible to the caller's reads (else 404), then Cedar.
  const writableRecord = (
    request: FastifyRequest,
    principal: Principal,
    object: CrmObject,
    fields: string[],
  ) =>
    authorizeExisting(
      crm,
      policy,
      policyAsk(request, principal, 'write', object, fields, 1),
      (request.params as Params).id,
      policy.rows(policyAsk(request, principal, 'read', object, [], 1)),
    );

  // A retried write with the same Idempotency-Key, for this user of this app, is answered once.
  const claimKey = (request: FastifyRequest, principal: Principal) =>
    deps.writeKeys.claim(request, { appId: principal.appId, actorId: principal.userId }, request.body);

  void app.register(async (scope) => {
    // CRM records never rest in a browser or proxy cache, whoever asked for them.
    scope.addHook('onRequest', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
    });
    recordRefusalsBeforeHandler(scope, deps, (request) => ({
      action: actionOf(request),
      resourceType: resourceTypeOf(request),
    }));
    // No CRM data is served over a log that no longer matches its signed checkpoints: what is read now
    // could not be shown to have been recorded. The refusal itself is recorded (above).
    scope.addHook('onRequest', async () => {
      const integrity = deps.audit.integrity();
      if (!integrity.intact) {
        throw new DependencyUnavailable(
          'AUDIT_LOG_DAMAGED',
          `the audit log is damaged (${integrity.problem}); an operator must restore it (gatehouse audit verify names the first bad index)`,
        );
      }
    });

    scope.get<{ Params: Params; Querystring: Query }>('/crm/v1/:plural/aggregate', (request, reply) =>
      governed(deps, request, reply, 'crm.aggregate', async (trail) => {
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const aggregate = parseAggregateQuery(request.query);
        const plan = planAggregate(
          config,
          principal,
          object,
          crm,
          aggregate,
          policy.rows(policyAsk(request, principal, 'aggregate', object, aggregateQueryFields(aggregate), 0)),
        );
        trail.scopes = plan.scopes;
        trail.fields = aggregateQueryFields(aggregate);
        const answer = await runAggregate(crm, config, plan);
        trail.recordCount = answer.groups.length;
        trail.reason = `${aggregateAsked(aggregate)}${answer.groups.length} groups returned; ${answer.suppressed_groups} suppressed below ${config.gateway.aggregate.minGroupSize}`;
        return answer;
      }),
    );

    scope.get<{ Params: Params; Querystring: Query }>('/crm/v1/:plural/:id', (request, reply) =>
      governed(deps, request, reply, 'crm.read', async (trail) => {
        trail.resourceId = request.params.id;
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const query = readQuery(request.query, ['fields']);
        const plan = planRead(config, principal, object, query.fields, (fields) =>
          policy.rows(policyAsk(request, principal, 'read', object, fields, 1)),
        );
        trail.scopes = plan.scopes;
        const record = await fetchRecord(crm, plan, request.params.id);
        policy.record(
          policyAsk(request, principal, 'read', object, plan.fields, 1),
          recordRefOf(object, request.params.id, record),
        );
        const consented = await consentCheck(crm, config, principal, object, [record]);
        const protect = protector(config, principal, object, plan.fields, consented);
        const safe = protect.protect(record);
        if (!safe) throw new NotFound();
        await guard.check(principal, object, [safe], trail);
        trail.headers.etag = etagOf(record);
        trail.fields = plan.fields;
        trail.recordCount = 1;
        trail.reason = readReason(1, protect);
        return safe;
      }),
    );

    scope.get<{ Params: Params; Querystring: Query }>('/crm/v1/:plural', (request, reply) =>
      governed(deps, request, reply, 'crm.list', async (trail) => {
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const query = readQuery(request.query, ['fields', 'filter', 'limit', 'cursor']);
        const limit = query.limit ?? config.gateway.defaultPageSize;
        if (limit > config.gateway.maxPageSize) {
          throw new InputError(`limit must be at most ${config.gateway.maxPageSize}`, { parameter: 'limit' });
        }
        // More than gateway.exportAbove records at once is an export, decided by the export rules.
        const plan = planRead(config, principal, object, query.fields, (fields) =>
          policy.rows(
            policyAsk(
              request,
              principal,
              listAction(config, limit),
              object,
              [...fields, ...filterFieldNames(query.filter)],
              limit,
            ),
          ),
        );
        trail.scopes = plan.scopes;
        const view = readerView(config, principal, object, crm.describe(object));
        const filter = parseFilters(view, query.filter);
        const binding = {
          userId: principal.userId,
          appId: principal.appId,
          object,
          filter: filter ? printFilter(filter) : '',
        };
        const start =
          query.cursor === undefined ? undefined : openCursor(deps.cursorKey, binding, query.cursor);
        const { page, protect } = await fetchVisiblePage(crm, config, principal, plan, view, {
          filter,
          limit,
          start,
        });
        const records = protectAll(protect, page.records);
        await guard.check(principal, object, records, trail);
        trail.fields = plan.fields;
        trail.recordCount = records.length;
        trail.reason = readReason(records.length, protect);
        return { records, next_cursor: page.next ? sealCursor(deps.cursorKey, binding, page.next) : null };
      }),
    );

    scope.post<{ Params: Params }>('/crm/v1/:plural', async (request, reply) => {
      const answer = await governed(deps, request, reply, 'crm.create', async (trail) => {
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const plan = writePlan(principal, object, request, 'create');
        trail.scopes = plan.scopes;
        return writeOnce(await claimKey(request, principal), trail, async (changed) => {
          const tally = new DlpTally();
          const values = createValues(principal, {
            ...plan,
            values: screenIncoming(config, object, plan.values, tally, trail),
          });
          // Consent first: a contact without it is reported exactly as one the caller cannot see.
          await consentedContact(request, principal, values);
          const ask = policyAsk(request, principal, 'write', object, Object.keys(plan.values), 1);
          await authorizeCreate(crm, policy, ask, values, plan.where);
          await recordIntent(deps, request, trail, Object.keys(plan.values));
          const stored = await crm.create(object, values);
          changed();
          const id = String(stored.id);
          trail.resourceId = id;
          const etag = await currentEtag(crm, object, id, plan.where);
          if (etag) trail.headers.etag = etag;
          trail.headers.location = `/crm/v1/${request.params.plural}/${encodeURIComponent(id)}`;
          trail.fields = Object.keys(plan.values);
          trail.recordCount = 1;
          trail.reason = writeReason('created', tally);
          return answerOf(config, principal, object, Object.keys(plan.values), stored);
        });
      });
      return reply.code(201).send(answer);
    });

    scope.patch<{ Params: Params }>('/crm/v1/:plural/:id', (request, reply) =>
      governed(deps, request, reply, 'crm.update', async (trail) => {
        trail.resourceId = request.params.id;
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const plan = writePlan(principal, object, request, 'update');
        trail.scopes = plan.scopes;
        return writeOnce(await claimKey(request, principal), trail, async (changed) => {
          const tally = new DlpTally();
          const values = screenIncoming(config, object, plan.values, tally, trail);
          const ifMatch = requireIfMatch(request.headers['if-match']);
          await consentedContact(request, principal, values);
          await writableRecord(request, principal, object, Object.keys(plan.values));
          const pinned = await checkVersion(crm, plan, request.params.id, ifMatch);
          await recordIntent(deps, request, trail, Object.keys(plan.values));
          const stored = await crm.update(object, request.params.id, values, pinned);
          // Gone from under the pinned version: another write landed between the check and this one.
          if (!stored) throw stale();
          changed();
          const etag = await currentEtag(crm, object, request.params.id, plan.where);
          if (etag) trail.headers.etag = etag;
          trail.fields = Object.keys(plan.values);
          trail.recordCount = 1;
          trail.reason = writeReason('updated', tally);
          return answerOf(config, principal, object, Object.keys(plan.values), stored);
        });
      }),
    );

    scope.delete<{ Params: Params }>('/crm/v1/:plural/:id', async (request, reply) => {
      await governed(deps, request, reply, 'crm.delete', async (trail) => {
        trail.resourceId = request.params.id;
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const plan = planDelete(
          config,
          principal,
          object,
          policy.rows(policyAsk(request, principal, 'write', object, [], 1)),
        );
        trail.scopes = plan.scopes;
        await writeOnce(await claimKey(request, principal), trail, async (changed) => {
          const ifMatch = requireIfMatch(request.headers['if-match']);
          await writableRecord(request, principal, object, []);
          const pinned = await checkVersion(crm, plan, request.params.id, ifMatch);
          await recordIntent(deps, request, trail, []);
          if (!(await crm.delete(object, request.params.id, pinned))) throw stale();
          changed();
          trail.recordCount = 1;
          trail.reason = 'deleted';
          return null;
        });
      });
      return reply.code(204).send();
    });
  });
}

/** protect for a write's answer: the stored record masked and DLP-redacted like any read. */
function answerOf(
  config: Config,
  principal: Parameters<typeof writeAnswer>[1],
  object: CrmObject,
  written: readonly string[],
  stored: Parameters<typeof writeAnswer>[4],
) {
  const { record, fields } = writeAnswer(config, principal, object, written, stored);
  return protector(config, principal, object, fields).protect(record);
}

function writeReason(verb: string, tally: DlpTally): string {
  const dlp = tally.describe();
  return dlp ? `record ${verb}; incoming ${dlp}` : `record ${verb}`;
}

const actions: Readonly<Record<string, string>> = {
  GET: 'crm.read',
  POST: 'crm.create',
  PATCH: 'crm.update',
  DELETE: 'crm.delete',
};

function actionOf(request: FastifyRequest): string {
  return actions[request.method] ?? 'crm.request';
}

function resourceTypeOf(request: FastifyRequest): string {
  const plural = (request.params as Partial<Params> | undefined)?.plural ?? '';
  return objectFromPlural(plural) ?? plural.slice(0, 64);
}

function objectOf(plural: string, trail: Trail): CrmObject {
  const object = objectFromPlural(plural);
  trail.resourceType = object ?? plural.slice(0, 64);
  if (!object) throw new NotFound('no such CRM object; use accounts, contacts, opportunities or notes');
  return object;
}

interface ReadQuery {
  fields?: string[];
  filter: string[];
  limit?: number;
  cursor?: string;
}

/** Parses untrusted query parameters; an unknown or malformed parameter is a 422 naming it. */
function readQuery(query: Record<string, unknown>, allowed: readonly string[]): ReadQuery {
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) {
      throw new InputError(`unknown query parameter ${key.slice(0, 64)}; allowed: ${allowed.join(', ')}`, {
        parameter: key.slice(0, 64),
      });
    }
  }
  const single = (key: string): string | undefined => {
    const value = query[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new InputError(`${key} may be given once`, { parameter: key });
    return value;
  };
  const out: ReadQuery = { filter: [] };
  const fields = single('fields');
  if (fields !== undefined) {
    const names = fields.split(',').filter(Boolean);
    if (names.length === 0 || names.length > 64 || !names.every((name) => fieldName.test(name))) {
      throw new InputError('fields must be a comma-separated list of field names', { parameter: 'fields' });
    }
    out.fields = names;
  }
  const limit = single('limit');
  if (limit !== undefined) {
    if (!/^[1-9][0-9]{0,5}$/.test(limit))
      throw new InputError('limit must be a positive integer', { parameter: 'limit' });
    out.limit = Number(limit);
  }
  const cursor = single('cursor');
  if (cursor !== undefined) {
    if (!cursorPattern.test(cursor))
      throw new InputError('cursor is not one this gateway issued', { parameter: 'cursor' });
    out.cursor = cursor;
  }
  const filter = query.filter;
  if (filter !== undefined) {
    out.filter = (Array.isArray(filter) ? filter : [filter]).map(String);
    if (out.filter.length > 8) throw new InputError('at most 8 filters', { parameter: 'filter' });
  }
  return out;
}
