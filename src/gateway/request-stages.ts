import type { Config } from '../config/index.js';
import {
  objectFromPlural,
  type CrmConnector,
  type CrmObject,
  type CrmRecord,
  type FilterExpr,
} from '../crm/index.js';
import { InputError, NotFound } from '../errors/index.js';
import type { RowCondition, RuntimeAction } from '../policy/index.js';
import {
  aggregateAsked,
  parseAggregateQuery,
  planAggregate,
  runAggregate,
  type AggregateQuery,
} from './aggregate.js';
import { aggregateQueryFields, authorizeCreate, authorizeExisting, listAction } from './authorize.js';
import { consentCheck, consentLinked, consentObject, hasConsent, type ConsentCheck } from './consent.js';
import { openCursor, sealCursor, type CursorBinding } from './cursor.js';
import { DlpTally, screenIncoming } from './dlp.js';
import { filterFields, parseFilterParams, printFilter } from './filter.js';
import type { BulkGuardStage } from './guard.js';
import { writeOnce, type WriteKeys } from './idempotency.js';
import { need, recordIntent, runStages, type Context, type PipelineDeps, type Stage } from './pipeline.js';
import { callerNetwork, type PolicyAsk } from './policy.js';
import {
  etagOf,
  fetchRecord,
  fetchVisiblePage,
  planRead,
  protectAll,
  protector,
  readReason,
  type Protector,
  type ReadPlan,
} from './stages.js';
import { rejectInvalid } from './shapes.js';
import { checkFilter, readerView, type CallerView } from './view.js';
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
  type WritePlan,
} from './writes.js';

/**
 * The stages of the data plane as named functions over one request context (DESIGN.md "One request
 * through the gateway"); routes.ts composes them into the pipelines each route runs. A stage reads
 * what earlier stages found (need() refuses a pipeline declared out of order) and sets its own part.
 */

export interface GatewayDeps extends PipelineDeps {
  config: Config;
  crm: CrmConnector;
  /** The key list cursors are authenticated with (cursor.ts), from the key service. */
  cursorKey: Uint8Array;
  /** Idempotency-Key claims of writes (idempotency.ts). */
  writeKeys: WriteKeys;
}

/** The gateway's dependencies as its stages use them: the CRM behind its breaker, and the bulk guard. */
export interface GatewayRuntime extends GatewayDeps {
  guard: BulkGuardStage;
}

/** One data-plane request: the pipeline context with what the CRM stages find. */
export interface GatewayContext extends Context<GatewayRuntime> {
  /** resolveObject: the CRM object the URL names. */
  object?: CrmObject;
  /** parseQuery: the checked query parameters. */
  query?: ReadQuery;
  /** The client's filters, parsed once (decideList), checked against the caller's view. */
  filter?: FilterExpr;
  /** decide: what was asked of the policy, built once, and the read plan it allowed. */
  ask?: PolicyAsk;
  plan?: ReadPlan;
  /** decideList: the caller's view of the object. */
  view?: CallerView;
  /** fetch + protect: the records as this caller may see them, and what protect did. */
  records?: CrmRecord[];
  protect?: Protector;
  /** fetchOne: the record as stored (its version gives the ETag). */
  stored?: CrmRecord;
  /** fetchPage: where the next page starts (sealed into next_cursor), and what the cursor is bound to. */
  next?: string;
  binding?: CursorBinding;
  /** aggregate: the parsed aggregate query. */
  aggregate?: AggregateQuery;
  /** Writes: the plan, the values after DLP, what DLP found, and the version the write is pinned to. */
  write?: WritePlan;
  values?: CrmRecord;
  tally?: DlpTally;
  ifMatch?: string[];
  pinned?: RowCondition[];
  /** idempotent: marks that the CRM changed (a failure after it keeps the key claimed). */
  changed?: () => void;
}

type Params = { plural?: string; id?: string };

const params = (context: GatewayContext): Params => context.request.params as Params;

/** The PolicyAsk of this request, built once per question (record count 1 unless a list says). */
function askOf(
  context: GatewayContext,
  action: RuntimeAction,
  object: CrmObject,
  fields: readonly string[],
  recordCount = 1,
): PolicyAsk {
  return {
    requestId: context.request.id,
    principal: need(context.principal),
    action,
    object,
    fields,
    recordCount,
    ip: callerNetwork(context.trail.ip, context.trail.network),
  };
}

/** The policy's row filter for one ask, the ask kept on the context. */
function rowsFor(context: GatewayContext, ask: PolicyAsk) {
  context.ask = ask;
  return context.deps.policy.rows(ask);
}

// ---- naming the target ----

/** nameResource: the record id the URL names goes on the event, whatever happens next. */
export function nameResource(context: GatewayContext): void {
  context.trail.resourceId = params(context).id ?? '';
}

/** resolveObject: the CRM object of `/crm/v1/:plural`, or 404 listing the ones there are. */
export function resolveObject(context: GatewayContext): void {
  const plural = params(context).plural ?? '';
  const object = objectFromPlural(plural);
  context.trail.resourceType = object ?? plural.slice(0, 64);
  if (!object) throw new NotFound('no such CRM object; use accounts, contacts, opportunities or notes');
  context.object = object;
}

/** parseQuery: the query parameters a read allows, checked (422 naming a bad one). */
export function parseQuery(allowed: readonly string[]): Stage<GatewayContext> {
  return function parseReadQuery(context) {
    context.query = readQuery(context.request.query as Record<string, unknown>, allowed);
  };
}

/**
 * checkShape: the route's declared shapes (shapes.ts), after the stage that parsed the same input with
 * its clearer messages; so the caller is authenticated first, and the refusal is audited with them.
 */
export function checkShape(context: GatewayContext): void {
  rejectInvalid(context.request);
}

// ---- reads ----

/** decide (one record): the one Cedar question of the read, whose row filter the fetch carries. */
export function decideRead(context: GatewayContext): void {
  const { config } = context.deps;
  const principal = need(context.principal);
  const object = need(context.object);
  context.plan = planRead(config, principal, object, need(context.query).fields, (fields) =>
    rowsFor(context, askOf(context, 'read', object, fields)),
  );
  context.trail.scopes = context.plan.scopes;
}

/**
 * fetch (one record) under the decided row filter. No second, record-level decision: a row filter
 * Cedar allowed is exact (policy/residual.ts compiles a residual exactly or refuses the request), so a
 * record the store finds under it is one Cedar allows; a missing or hidden record is the same 404.
 */
export async function fetchOne(context: GatewayContext): Promise<void> {
  context.stored = await fetchRecord(context.deps.crm, need(context.plan), need(params(context).id));
}

/** protect (one record): consent, masks by role, DLP of outgoing free text; 404 when it may not leave. */
export function protectOne(context: GatewayContext): void | Promise<void> {
  const record = need(context.stored);
  if (!consentLinked(need(context.object))) return protectStored(context, undefined);
  return consentCheck(context.deps.crm, context.deps.config, need(context.principal), need(context.object), [
    record,
  ]).then((consented) => protectStored(context, consented));
}

function protectStored(context: GatewayContext, linked: ConsentCheck | undefined): void {
  const { config } = context.deps;
  const principal = need(context.principal);
  const object = need(context.object);
  const consented =
    linked ??
    (object === consentObject ? (record: CrmRecord) => hasConsent(config, principal, record) : undefined);
  const protect = protector(config, principal, object, need(context.plan).fields, consented);
  const safe = protect.protect(need(context.stored));
  if (!safe) throw new NotFound();
  context.protect = protect;
  context.records = [safe];
}

/** decideList: the page size and export rule, the filters parsed once, the Cedar question, the view. */
export function decideList(context: GatewayContext): void {
  const { config, crm } = context.deps;
  const principal = need(context.principal);
  const object = need(context.object);
  const query = need(context.query);
  // The route's shape bounds limit by gateway.maxPageSize (shapes.ts, checkShape).
  const limit = query.limit ?? config.gateway.defaultPageSize;
  // More than gateway.exportAbove records at once is an export, decided by the export rules; a filter
  // on a field reads it, one guess at a time.
  context.plan = planRead(config, principal, object, query.fields, (fields) => {
    context.filter = parseFilterParams(query.filter);
    const filtered = context.filter ? filterFields(context.filter) : [];
    return rowsFor(
      context,
      askOf(context, listAction(config, limit), object, [...fields, ...filtered], limit),
    );
  });
  context.trail.scopes = context.plan.scopes;
  context.view = readerView(config, principal, object, crm.describe(object));
  if (context.filter) checkFilter(context.view, context.filter);
}

/** fetch + protect (a page): from the cursor's position, the records the caller's view shows. */
export async function fetchPage(context: GatewayContext): Promise<void> {
  const { config, crm, cursorKey } = context.deps;
  const principal = need(context.principal);
  const query = need(context.query);
  const { filter } = context;
  const binding = {
    userId: principal.userId,
    appId: principal.appId,
    object: need(context.object),
    filter: filter ? printFilter(filter) : '',
  };
  const start = query.cursor === undefined ? undefined : openCursor(cursorKey, binding, query.cursor);
  const { page, protect } = await fetchVisiblePage(
    crm,
    config,
    principal,
    need(context.plan),
    need(context.view),
    {
      filter,
      limit: query.limit ?? config.gateway.defaultPageSize,
      start,
    },
  );
  context.binding = binding;
  context.next = page.next;
  context.protect = protect;
  context.records = protectAll(protect, page.records);
}

/** guard: the records about to leave, against the user's and the app's export budgets. */
export function guardRecords(context: GatewayContext): Promise<void> {
  return context.deps.guard.check(
    need(context.principal),
    need(context.object),
    need(context.records),
    context.trail,
    context.appPlan?.reads,
  );
}

/** answer (one record): the record, its ETag, and what the event says the read did. */
export function answerOne(context: GatewayContext): void {
  const { trail } = context;
  trail.headers.etag = etagOf(need(context.stored));
  trail.fields = need(context.plan).fields;
  trail.recordCount = 1;
  trail.reason = readReason(1, need(context.protect));
  context.answer = need(context.records)[0];
}

/** answer (a page): the records and the sealed cursor of the next page. */
export function answerPage(context: GatewayContext): void {
  const { trail } = context;
  const records = need(context.records);
  trail.fields = need(context.plan).fields;
  trail.recordCount = records.length;
  trail.reason = readReason(records.length, need(context.protect));
  context.answer = {
    records,
    next_cursor: context.next
      ? sealCursor(context.deps.cursorKey, need(context.binding), context.next)
      : null,
  };
}

// ---- aggregates ----

/** parseAggregate: what the aggregate groups by, measures and filters on. */
export function parseAggregate(context: GatewayContext): void {
  context.aggregate = parseAggregateQuery(context.request.query as Record<string, unknown>);
}

/**
 * decide + fetch (aggregate): Cedar on the fields the aggregate names, then the groups, each at least
 * gateway.aggregate.minGroupSize records or suppressed.
 */
export async function runAggregation(context: GatewayContext): Promise<void> {
  const { config, crm } = context.deps;
  const aggregate = need(context.aggregate);
  const object = need(context.object);
  const fields = aggregateQueryFields(aggregate);
  const plan = planAggregate(
    config,
    need(context.principal),
    object,
    crm,
    aggregate,
    rowsFor(context, askOf(context, 'aggregate', object, fields, 0)),
  );
  const { trail } = context;
  trail.scopes = plan.scopes;
  trail.fields = fields;
  const answer = await runAggregate(crm, config, plan);
  trail.recordCount = answer.groups.length;
  trail.reason = `${aggregateAsked(aggregate)}${answer.groups.length} groups returned; ${answer.suppressed_groups} suppressed below ${config.gateway.aggregate.minGroupSize}`;
  context.answer = answer;
}

// ---- writes ----

/** shape + authorize (create, update): the allowed fields of the body under the row filter for writing them. */
export function planWriting(mode: 'create' | 'update'): Stage<GatewayContext> {
  return function planWriteOf(context) {
    const principal = need(context.principal);
    const object = need(context.object);
    context.write = planWrite(
      context.deps.config,
      principal,
      object,
      jsonBody(context.request),
      mode,
      (fields) => rowsFor(context, askOf(context, 'write', object, fields)),
    );
    context.trail.scopes = context.write.scopes;
  };
}

/** shape + authorize (delete): deletable objects only, a note only by its author, under the row filter. */
export function planDeleting(context: GatewayContext): void {
  const principal = need(context.principal);
  const object = need(context.object);
  context.write = planDelete(
    context.deps.config,
    principal,
    object,
    rowsFor(context, askOf(context, 'write', object, [])),
  );
  context.trail.scopes = context.write.scopes;
}

/**
 * idempotent: the stages that change the CRM, run once per Idempotency-Key of this user of this app; a
 * retry gets the saved answer (idempotency.ts writeOnce).
 */
export function idempotent(stages: readonly Stage<GatewayContext>[]): Stage<GatewayContext> {
  return async function once(context) {
    const principal = need(context.principal);
    const { request } = context;
    const claim = await context.deps.writeKeys.claim(
      request,
      { appId: principal.appId, actorId: principal.userId },
      request.body,
    );
    context.answer = await writeOnce(claim, context.trail, (changed) => {
      context.changed = changed;
      return Promise.resolve(runStages(stages, context));
    });
  };
}

/** DLP of what comes in (create): sent values screened, then the values the gateway sets itself. */
export function screenCreate(context: GatewayContext): void {
  const write = need(context.write);
  context.tally = new DlpTally();
  const values = screenIncoming(
    context.deps.config,
    write.object,
    write.values,
    context.tally,
    context.trail,
  );
  context.values = createValues(need(context.principal), { ...write, values });
}

/** DLP of what comes in (update), and the If-Match the update must carry. */
export function screenUpdate(context: GatewayContext): void {
  const write = need(context.write);
  context.tally = new DlpTally();
  context.values = screenIncoming(
    context.deps.config,
    write.object,
    write.values,
    context.tally,
    context.trail,
  );
  context.ifMatch = requireIfMatch(context.request.headers['if-match']);
}

/** The If-Match a delete must carry. */
export function requireVersion(context: GatewayContext): void {
  context.ifMatch = requireIfMatch(context.request.headers['if-match']);
}

/** consent (writes): a note about a contact needs that contact's consent, reported as not visible. */
export function consentedContact(context: GatewayContext): Promise<void> {
  const { config, crm } = context.deps;
  return requireConsentedContact(crm, config, need(context.principal), need(context.values), () =>
    rowsFor(context, askOf(context, 'read', 'contact', [])),
  );
}

/** authorize (create): Cedar on the new record with its parent's attributes, inside the row filter. */
export function authorizeNew(context: GatewayContext): Promise<void> {
  const write = need(context.write);
  const ask = askOf(context, 'write', write.object, Object.keys(write.values));
  context.ask = ask;
  return authorizeCreate(context.deps.crm, context.deps.policy, ask, need(context.values), write.where);
}

/** authorize (update, delete): the record visible to the caller's reads (else 404), then Cedar on it. */
export function authorizeStored(context: GatewayContext): Promise<void> {
  const write = need(context.write);
  const { crm, policy } = context.deps;
  const ask = askOf(context, 'write', write.object, Object.keys(write.values));
  context.ask = ask;
  const visible = policy.rows(askOf(context, 'read', write.object, []));
  return authorizeExisting(crm, policy, ask, need(params(context).id), visible);
}

/** The record's current version, checked against If-Match (412 when it changed); the write pins it. */
export async function pinVersion(context: GatewayContext): Promise<void> {
  context.pinned = await checkVersion(
    context.deps.crm,
    need(context.write),
    need(params(context).id),
    need(context.ifMatch),
  );
}

/** record (intent): the write's intent made durable before the CRM changes. */
export function recordWriteIntent(context: GatewayContext): Promise<void> {
  return recordIntent(context.deps, context.request, context.trail, Object.keys(need(context.write).values));
}

/** The create itself; its answer is the stored record as this caller may read it. */
export async function createRecord(context: GatewayContext): Promise<void> {
  const { crm } = context.deps;
  const write = need(context.write);
  const stored = await crm.create(write.object, need(context.values));
  need(context.changed)();
  const id = String(stored.id);
  const { trail } = context;
  trail.resourceId = id;
  const etag = await currentEtag(crm, write.object, id, write.where);
  if (etag) trail.headers.etag = etag;
  trail.headers.location = `/crm/v1/${params(context).plural ?? ''}/${encodeURIComponent(id)}`;
  answerWrite(context, 'created', stored);
}

/** The update itself, pinned to the version checked (412 if another write landed in between). */
export async function updateRecord(context: GatewayContext): Promise<void> {
  const { crm } = context.deps;
  const write = need(context.write);
  const id = need(params(context).id);
  const stored = await crm.update(write.object, id, need(context.values), need(context.pinned));
  if (!stored) throw stale();
  need(context.changed)();
  const etag = await currentEtag(crm, write.object, id, write.where);
  if (etag) context.trail.headers.etag = etag;
  answerWrite(context, 'updated', stored);
}

/** The delete itself, pinned to the version checked. */
export async function deleteRecord(context: GatewayContext): Promise<void> {
  const write = need(context.write);
  if (!(await context.deps.crm.delete(write.object, need(params(context).id), need(context.pinned)))) {
    throw stale();
  }
  need(context.changed)();
  context.trail.recordCount = 1;
  context.trail.reason = 'deleted';
  context.answer = null;
}

/** A write's answer: the stored record masked and DLP-redacted like any read. */
function answerWrite(context: GatewayContext, verb: string, stored: CrmRecord): void {
  const { config } = context.deps;
  const principal = need(context.principal);
  const write = need(context.write);
  const written = Object.keys(write.values);
  const { record, fields } = writeAnswer(config, principal, write.object, written, stored);
  const dlp = need(context.tally).describe();
  context.trail.fields = written;
  context.trail.recordCount = 1;
  context.trail.reason = dlp ? `record ${verb}; incoming ${dlp}` : `record ${verb}`;
  context.answer = protector(config, principal, write.object, fields).protect(record);
}

// ---- query parameters ----

interface ReadQuery {
  fields?: string[];
  filter: string[];
  limit?: number;
  cursor?: string;
}

const fieldName = /^[a-z_]{1,64}$/;
const cursorPattern = /^[A-Za-z0-9_-]{1,512}$/;

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
