import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PropertyDefinition } from './mapping.js';
import { searchLimits } from './search.js';

/**
 * A HubSpot stand-in for tests and `serve --demo --crm hubspot`: real HTTP on loopback, built from
 * HubSpot's documented shapes (CRM v3 objects, search, properties, owners; error bodies with
 * `category` and `correlationId`; `X-HubSpot-RateLimit-*` headers, which search answers do not carry;
 * 429 bodies with `policyName`). Search bodies are validated as strictly as HubSpot does: unknown keys,
 * properties or operators and more filters than allowed are a 400 VALIDATION_ERROR.
 */

export interface FakeRecord {
  id: string;
  properties: Record<string, string | null>;
}

export interface FakeOwner {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  /** The owner's teams; Gatehouse reads the primary team's name as the territory. */
  teams: { id: string; name: string; primary: boolean }[];
}

export interface HubSpotFakeOptions {
  /** The private-app token requests must carry. */
  token: string;
  /** Calls a day (`X-HubSpot-RateLimit-Daily`); default 500,000 (Enterprise with the API add-on is 1,000,000). */
  daily?: number;
  /** Calls per ten seconds (`X-HubSpot-RateLimit-Max`); default 1,000 so that busy tests are not slowed. */
  perInterval?: number;
}

export interface HubSpotFake {
  readonly url: string;
  /** Replaces the records of an object type (ids are kept) and the owners. */
  load(objectType: string, records: readonly FakeRecord[]): void;
  loadOwners(owners: readonly FakeOwner[]): void;
  /** Every search body received, in order, as parsed JSON. */
  readonly searches: unknown[];
  /** The next `count` requests are answered with `status` (5xx, or 429 with `policyName`). */
  failNext(count: number, status: number, policyName?: string): void;
  /** Sets the calls left today, to see Gatehouse back off before the daily limit. */
  setDailyRemaining(remaining: number): void;
  record(objectType: string, id: string): (FakeRecord & { associations: unknown[] }) | undefined;
  /** Requests answered so far (any endpoint, refused ones included). */
  readonly calls: number;
  close(): Promise<void>;
}

interface StoredRecord {
  id: string;
  /** As created: `{to: {id}, types: [...]}`, kept for tests to inspect. */
  associations?: unknown[];
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
}

const operators = new Set([
  'EQ',
  'NEQ',
  'LT',
  'LTE',
  'GT',
  'GTE',
  'BETWEEN',
  'IN',
  'NOT_IN',
  'HAS_PROPERTY',
  'NOT_HAS_PROPERTY',
  'CONTAINS_TOKEN',
  'NOT_CONTAINS_TOKEN',
]);
const maxSearchLimit = 200;
const maxSearchResults = 10_000;

export async function startHubSpotFake(options: HubSpotFakeOptions): Promise<HubSpotFake> {
  const definitions = standardProperties();
  const records = new Map<string, Map<string, StoredRecord>>(
    Object.keys(definitions).map((type) => [type, new Map()]),
  );
  let owners: FakeOwner[] = [];
  let nextId = 1_000_000;
  const searches: unknown[] = [];
  let calls = 0;
  const failures: { status: number; policyName?: string }[] = [];
  const daily = options.daily ?? 500_000;
  const perInterval = options.perInterval ?? 1000;
  const usage = { dailyRemaining: daily, windowStart: 0, inWindow: 0 };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, errorBody('internal error', 'INTERNAL_ERROR')));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls += 1;
    const url = new URL(req.url ?? '/', 'http://fake');
    const isSearch = req.method === 'POST' && /\/search$/.test(url.pathname);
    if (req.headers.authorization !== `Bearer ${options.token}`) {
      send(
        res,
        401,
        errorBody(
          'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
          'INVALID_AUTHENTICATION',
        ),
      );
      return;
    }
    const failure = failures.shift();
    if (failure?.status === 429) {
      send(res, 429, rateLimitBody(failure.policyName ?? 'TEN_SECONDLY_ROLLING'));
      return;
    }
    if (failure) {
      send(res, failure.status, errorBody('internal error', 'INTERNAL_ERROR'));
      return;
    }
    const limited = countCall();
    if (limited) {
      send(res, 429, rateLimitBody(limited));
      return;
    }
    // Search answers carry no rate-limit headers (HubSpot documents it so).
    if (!isSearch) setLimitHeaders(res);
    const body = await readJson(req);
    const route = url.pathname.split('/').filter(Boolean);
    if (route[0] !== 'crm' || route[1] !== 'v3') return notFound(res);
    if (route[2] === 'owners' && req.method === 'GET') return listOwners(res, url);
    if (route[2] === 'properties' && route[3] && req.method === 'GET') {
      const props = definitions[route[3]];
      return props ? send(res, 200, { results: props }) : notFound(res);
    }
    const type = route[3];
    const table = type ? records.get(type) : undefined;
    if (route[2] !== 'objects' || !type || !table) return notFound(res);
    if (route.length === 5 && route[4] === 'search' && req.method === 'POST')
      return search(res, type, table, body);
    if (route.length === 4 && req.method === 'POST') return create(res, type, table, body);
    const id = route[4];
    const record = id ? table.get(id) : undefined;
    if (route.length !== 5 || !record) return notFound(res);
    if (req.method === 'GET') return send(res, 200, answer(record, wanted(url, type)));
    if (req.method === 'PATCH') return update(res, type, record, body);
    if (req.method === 'DELETE') {
      table.delete(record.id);
      res.writeHead(204).end();
      return;
    }
    notFound(res);
  }

  function countCall(): string | undefined {
    const now = Date.now();
    if (now - usage.windowStart >= 10_000) Object.assign(usage, { windowStart: now, inWindow: 0 });
    if (usage.dailyRemaining <= 0) return 'DAILY';
    if (usage.inWindow >= perInterval) return 'TEN_SECONDLY_ROLLING';
    usage.inWindow += 1;
    usage.dailyRemaining -= 1;
    return undefined;
  }

  function setLimitHeaders(res: ServerResponse): void {
    res.setHeader('X-HubSpot-RateLimit-Daily', String(daily));
    res.setHeader('X-HubSpot-RateLimit-Daily-Remaining', String(usage.dailyRemaining));
    res.setHeader('X-HubSpot-RateLimit-Interval-Milliseconds', '10000');
    res.setHeader('X-HubSpot-RateLimit-Max', String(perInterval));
    res.setHeader('X-HubSpot-RateLimit-Remaining', String(perInterval - usage.inWindow));
  }

  function listOwners(res: ServerResponse, url: URL): void {
    const email = url.searchParams.get('email');
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 500);
    const start = Number(url.searchParams.get('after') ?? 0) || 0;
    const matching = owners.filter((o) => email === null || o.email.toLowerCase() === email.toLowerCase());
    const page = matching.slice(start, start + limit).map((o) => ({
      ...o,
      type: 'PERSON',
      userId: Number(o.id) + 1000,
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
      archived: false,
    }));
    const more = start + limit < matching.length;
    send(res, 200, {
      results: page,
      ...(more ? { paging: { next: { after: String(start + limit) } } } : {}),
    });
  }

  function search(res: ServerResponse, type: string, table: Map<string, StoredRecord>, body: unknown): void {
    searches.push(body);
    const problem = checkSearch(body, definitions[type] ?? []);
    if (problem) return send(res, 400, errorBody(problem, 'VALIDATION_ERROR'));
    const req = body as SearchBody;
    const defs = new Map((definitions[type] ?? []).map((d) => [d.name, d]));
    const groups = req.filterGroups ?? [];
    const matches = [...table.values()].filter(
      (r) => groups.length === 0 || groups.some((g) => g.filters.every((f) => matchesFilter(r, f, defs))),
    );
    const sort = req.sorts?.[0];
    const key = typeof sort === 'string' ? sort : sort?.propertyName;
    const direction = typeof sort === 'object' && sort.direction === 'DESCENDING' ? -1 : 1;
    matches.sort(
      (a, b) =>
        direction *
        compareValues(
          valueOf(a, key ?? 'hs_object_id'),
          valueOf(b, key ?? 'hs_object_id'),
          defs.get(key ?? 'hs_object_id'),
        ),
    );
    const start = Number(req.after ?? 0);
    const limit = req.limit ?? 10;
    const page = matches.slice(start, start + limit);
    const next = start + limit < matches.length ? { paging: { next: { after: String(start + limit) } } } : {};
    send(res, 200, {
      total: matches.length,
      results: page.map((r) => answer(r, req.properties ?? [])),
      ...next,
    });
  }

  function create(res: ServerResponse, type: string, table: Map<string, StoredRecord>, body: unknown): void {
    const problem = checkWrite(body, definitions[type] ?? [], true);
    if (problem) return send(res, 400, errorBody(problem, 'VALIDATION_ERROR'));
    const input = body as { properties: Record<string, string | null>; associations?: unknown[] };
    const now = new Date().toISOString();
    const id = String(nextId++);
    const record: StoredRecord = {
      id,
      properties: { ...input.properties },
      associations: input.associations ?? [],
      createdAt: now,
      updatedAt: now,
    };
    stamp(type, record, now, true);
    table.set(id, record);
    send(res, 201, answer(record, Object.keys(input.properties)));
  }

  function update(res: ServerResponse, type: string, record: StoredRecord, body: unknown): void {
    const problem = checkWrite(body, definitions[type] ?? [], false);
    if (problem) return send(res, 400, errorBody(problem, 'VALIDATION_ERROR'));
    const input = body as { properties: Record<string, string | null> };
    Object.assign(record.properties, input.properties);
    const now = new Date().toISOString();
    stamp(type, record, now, false);
    send(res, 200, answer(record, Object.keys(input.properties)));
  }

  function stamp(type: string, record: StoredRecord, now: string, created: boolean): void {
    record.updatedAt = now;
    record.properties[type === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate'] = now;
    record.properties.hs_object_id = record.id;
    if (created) record.properties[type === 'notes' ? 'hs_createdate' : 'createdate'] = now;
  }

  function wanted(url: URL, type: string): string[] {
    const names = (url.searchParams.get('properties') ?? '').split(',').filter(Boolean);
    const known = new Set((definitions[type] ?? []).map((d) => d.name));
    // As HubSpot does: unknown names in a properties list are ignored.
    return names.filter((n) => known.has(n));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    searches,
    get calls() {
      return calls;
    },
    load(objectType, list) {
      const table = records.get(objectType);
      if (!table) throw new TypeError(`the fake has no object type ${objectType}`);
      table.clear();
      for (const r of list) {
        const stored: StoredRecord = {
          id: r.id,
          properties: { ...r.properties, hs_object_id: r.id },
          createdAt: r.properties.createdate ?? r.properties.hs_createdate ?? new Date(0).toISOString(),
          updatedAt:
            r.properties.lastmodifieddate ?? r.properties.hs_lastmodifieddate ?? new Date(0).toISOString(),
        };
        table.set(r.id, stored);
        nextId = Math.max(nextId, Number(r.id) + 1);
      }
    },
    loadOwners(list) {
      owners = list.map((o) => ({ ...o, teams: o.teams.map((t) => ({ ...t })) }));
    },
    failNext(count, status, policyName) {
      for (let i = 0; i < count; i++) failures.push({ status, policyName });
    },
    setDailyRemaining(remaining) {
      usage.dailyRemaining = remaining;
    },
    record(objectType, id) {
      const r = records.get(objectType)?.get(id);
      return r
        ? { id: r.id, properties: { ...r.properties }, associations: r.associations ?? [] }
        : undefined;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface SearchBody {
  filterGroups?: { filters: Filter[] }[];
  sorts?: (string | { propertyName: string; direction?: string })[];
  properties?: string[];
  limit?: number;
  after?: string;
  query?: string;
}
interface Filter {
  propertyName: string;
  operator: string;
  value?: string;
  highValue?: string;
  values?: string[];
}

/** HubSpot's answer to a malformed search, in words close to its own; undefined when the body is valid. */
export function checkSearch(body: unknown, defs: readonly PropertyDefinition[]): string | undefined {
  if (!isObject(body)) return 'Invalid input JSON: the request body must be an object';
  const known = new Set(defs.map((d) => d.name));
  for (const key of Object.keys(body)) {
    if (!['filterGroups', 'sorts', 'properties', 'limit', 'after', 'query'].includes(key)) {
      return `Invalid input JSON: Unrecognized field "${key}"`;
    }
  }
  const { filterGroups = [], sorts = [], properties = [], limit, after } = body as Record<string, unknown>;
  if (!Array.isArray(filterGroups)) return 'Invalid input JSON: filterGroups must be an array';
  if (filterGroups.length > searchLimits.groups) {
    return `Too many filter groups: ${filterGroups.length} (maximum is ${searchLimits.groups})`;
  }
  let total = 0;
  for (const group of filterGroups) {
    if (
      !isObject(group) ||
      !Array.isArray(group.filters) ||
      Object.keys(group).some((k) => k !== 'filters')
    ) {
      return 'Invalid input JSON: a filter group is {"filters": [...]}';
    }
    if (group.filters.length > searchLimits.filtersPerGroup) {
      return `Too many filters in a filter group: ${group.filters.length} (maximum is ${searchLimits.filtersPerGroup})`;
    }
    total += group.filters.length;
    for (const filter of group.filters as unknown[]) {
      const problem = checkFilter(filter, known);
      if (problem) return problem;
    }
  }
  if (total > searchLimits.filters) return `Too many filters: ${total} (maximum is ${searchLimits.filters})`;
  if (!Array.isArray(sorts) || sorts.length > 1) return 'Invalid input JSON: at most one sort is supported';
  for (const sort of sorts) {
    const name = typeof sort === 'string' ? sort : isObject(sort) ? sort.propertyName : undefined;
    if (typeof name !== 'string' || !known.has(name)) return `Unable to sort on property ${String(name)}`;
    if (
      isObject(sort) &&
      sort.direction !== undefined &&
      !['ASCENDING', 'DESCENDING'].includes(String(sort.direction))
    ) {
      return 'Invalid input JSON: direction must be ASCENDING or DESCENDING';
    }
  }
  if (!Array.isArray(properties) || properties.some((p) => typeof p !== 'string')) {
    return 'Invalid input JSON: properties must be an array of strings';
  }
  if (
    limit !== undefined &&
    (!Number.isInteger(limit) || (limit as number) < 0 || (limit as number) > maxSearchLimit)
  ) {
    return `limit must be from 0 to ${maxSearchLimit}`;
  }
  if (after !== undefined && (typeof after !== 'string' || !/^\d{1,6}$/.test(after))) {
    return 'Invalid input JSON: after must be the paging token of a previous answer';
  }
  if (Number(after ?? 0) + Number(limit ?? 10) > maxSearchResults) {
    return `The search API returns at most ${maxSearchResults} results for one query`;
  }
  return undefined;
}

function checkFilter(filter: unknown, known: ReadonlySet<string>): string | undefined {
  if (!isObject(filter)) return 'Invalid input JSON: a filter is an object';
  for (const key of Object.keys(filter)) {
    if (!['propertyName', 'operator', 'value', 'highValue', 'values'].includes(key)) {
      return `Invalid input JSON: Unrecognized field "${key}"`;
    }
  }
  const { propertyName, operator, value, highValue, values } = filter;
  if (typeof propertyName !== 'string' || !known.has(propertyName)) {
    return `Property ${JSON.stringify(String(propertyName)).slice(0, 80)} does not exist`;
  }
  if (typeof operator !== 'string' || !operators.has(operator)) {
    return `Invalid input JSON: operator ${JSON.stringify(String(operator)).slice(0, 40)} is not one of ${[...operators].join(', ')}`;
  }
  const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  if (operator === 'IN' || operator === 'NOT_IN') {
    if (!Array.isArray(values) || values.length === 0 || !values.every(scalar) || value !== undefined) {
      return `${operator} needs a non-empty "values" list`;
    }
    if (values.length > searchLimits.inValues) {
      return `Too many values for ${operator}: ${values.length} (maximum is ${searchLimits.inValues})`;
    }
    return undefined;
  }
  if (operator === 'HAS_PROPERTY' || operator === 'NOT_HAS_PROPERTY') {
    return value === undefined && values === undefined ? undefined : `${operator} takes no value`;
  }
  if (!scalar(value) || values !== undefined) return `${operator} needs one "value"`;
  if (operator === 'BETWEEN' && !scalar(highValue)) return 'BETWEEN needs "value" and "highValue"';
  return undefined;
}

function checkWrite(body: unknown, defs: readonly FakeDefinition[], create: boolean): string | undefined {
  if (!isObject(body) || !isObject(body.properties)) return 'Invalid input JSON: properties is required';
  for (const key of Object.keys(body)) {
    if (!['properties', ...(create ? ['associations'] : [])].includes(key)) {
      return `Invalid input JSON: Unrecognized field "${key}"`;
    }
  }
  const known = new Map(defs.map((d) => [d.name, d]));
  for (const [name, value] of Object.entries(body.properties)) {
    const def = known.get(name);
    if (!def) return `Property values were not valid: Property "${name.slice(0, 80)}" does not exist`;
    if (value !== null && typeof value !== 'string') {
      return `Property values were not valid: ${name} must be a string`;
    }
    if (def.modificationMetadata?.readOnlyValue)
      return `Property values were not valid: ${name} is a read only property`;
    if (value && def.type === 'number' && !Number.isFinite(Number(value))) {
      return `Property values were not valid: ${value.slice(0, 20)} was not a valid number`;
    }
    if (value && def.options && !def.options.some((o) => o.value === value)) {
      return `Property values were not valid: ${value.slice(0, 40)} was not one of the allowed options`;
    }
  }
  if (create && body.associations !== undefined) {
    if (!Array.isArray(body.associations)) return 'Invalid input JSON: associations must be an array';
    for (const a of body.associations as unknown[]) {
      const ok =
        isObject(a) &&
        isObject(a.to) &&
        typeof a.to.id === 'string' &&
        Array.isArray(a.types) &&
        a.types.every(
          (t: unknown) =>
            isObject(t) &&
            t.associationCategory === 'HUBSPOT_DEFINED' &&
            Number.isInteger(t.associationTypeId),
        );
      if (!ok)
        return 'Invalid input JSON: an association is {to: {id}, types: [{associationCategory, associationTypeId}]}';
    }
  }
  return undefined;
}

function matchesFilter(
  record: StoredRecord,
  filter: Filter,
  defs: ReadonlyMap<string, PropertyDefinition>,
): boolean {
  const actual = valueOf(record, filter.propertyName);
  const def = defs.get(filter.propertyName);
  const has = actual !== null && actual !== '';
  const cmp = (v: string | undefined) => (has ? compareValues(actual, String(v), def) : NaN);
  switch (filter.operator) {
    case 'HAS_PROPERTY':
      return has;
    case 'NOT_HAS_PROPERTY':
      return !has;
    case 'EQ':
      return cmp(filter.value) === 0;
    // HubSpot's NEQ and NOT_IN also match records that have no value for the property.
    case 'NEQ':
      return !has || cmp(filter.value) !== 0;
    case 'LT':
      return cmp(filter.value) < 0;
    case 'LTE':
      return cmp(filter.value) <= 0;
    case 'GT':
      return cmp(filter.value) > 0;
    case 'GTE':
      return cmp(filter.value) >= 0;
    case 'BETWEEN':
      return cmp(filter.value) >= 0 && cmp(filter.highValue) <= 0;
    case 'IN':
      return (filter.values ?? []).some((v) => cmp(String(v)) === 0);
    case 'NOT_IN':
      return !has || !(filter.values ?? []).some((v) => cmp(String(v)) === 0);
    case 'CONTAINS_TOKEN':
      return has && String(actual).toLowerCase().split(/\W+/).includes(String(filter.value).toLowerCase());
    case 'NOT_CONTAINS_TOKEN':
      return !has || !String(actual).toLowerCase().split(/\W+/).includes(String(filter.value).toLowerCase());
    default:
      return false;
  }
}

/** Compares as the property's type: numbers as numbers, dates and times as instants (ms or ISO), text as text. */
function compareValues(a: string | null, b: string | null, def: PropertyDefinition | undefined): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (def?.type === 'number') return Number(a) - Number(b);
  if (def?.type === 'date' || def?.type === 'datetime') return instant(a) - instant(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

function instant(value: string): number {
  return /^\d+$/.test(value) ? Number(value) : Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value);
}

function valueOf(record: StoredRecord, name: string): string | null {
  return name === 'hs_object_id' ? record.id : (record.properties[name] ?? null);
}

function answer(record: StoredRecord, properties: readonly string[]) {
  const out: Record<string, string | null> = {};
  for (const name of ['hs_object_id', ...properties]) out[name] = valueOf(record, name);
  return {
    id: record.id,
    properties: out,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    archived: false,
  };
}

function errorBody(message: string, category: string) {
  return { status: 'error', message, correlationId: randomUUID(), category };
}

function rateLimitBody(policyName: string) {
  return {
    status: 'error',
    message: `You have reached your ${policyName.toLowerCase()} limit.`,
    errorType: 'RATE_LIMIT',
    correlationId: randomUUID(),
    policyName,
  };
}

function notFound(res: ServerResponse): void {
  send(res, 404, errorBody('resource not found', 'OBJECT_NOT_FOUND'));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8' }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return Symbol('invalid');
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface FakeDefinition extends PropertyDefinition {
  modificationMetadata?: { archivable: boolean; readOnlyDefinition: boolean; readOnlyValue: boolean };
  options?: { label: string; value: string }[];
}

/** The properties a portal has: HubSpot's standard ones, and the custom ones Gatehouse's mapping uses. */
export function standardProperties(): Record<string, FakeDefinition[]> {
  const p = (
    name: string,
    label: string,
    type: string,
    fieldType: string,
    extra: Partial<FakeDefinition> = {},
  ): FakeDefinition => ({
    name,
    label,
    type,
    fieldType,
    hubspotDefined: !name.startsWith('gatehouse_') && name !== 'date_of_birth',
    ...extra,
  });
  const readOnly = {
    modificationMetadata: { archivable: false, readOnlyDefinition: true, readOnlyValue: true },
  };
  const options = (values: readonly string[]) => values.map((value) => ({ label: value, value }));
  const common = [
    p('hs_object_id', 'Record ID', 'number', 'number', readOnly),
    p('hubspot_owner_id', 'Owner', 'enumeration', 'select'),
    p('gatehouse_territory', 'Territory', 'enumeration', 'select', {
      options: options(['EMEA', 'NA', 'APAC']),
    }),
    p('hs_lastmodifieddate', 'Last Modified Date', 'datetime', 'date', readOnly),
  ];
  return {
    companies: [
      ...common,
      p('createdate', 'Create Date', 'datetime', 'date', readOnly),
      p('name', 'Company name', 'string', 'text'),
      p('industry', 'Industry', 'string', 'text'),
      p('annualrevenue', 'Annual Revenue', 'number', 'number'),
      p('domain', 'Company Domain Name', 'string', 'text'),
    ],
    contacts: [
      ...common,
      p('createdate', 'Create Date', 'datetime', 'date', readOnly),
      p('lastmodifieddate', 'Last Modified Date', 'datetime', 'date', readOnly),
      p('firstname', 'First Name', 'string', 'text'),
      p('lastname', 'Last Name', 'string', 'text'),
      p('jobtitle', 'Job Title', 'string', 'text'),
      p('associatedcompanyid', 'Primary Associated Company ID', 'number', 'number'),
      p('email', 'Email', 'string', 'text'),
      p('phone', 'Phone Number', 'string', 'phonenumber'),
      p('mobilephone', 'Mobile Phone Number', 'string', 'phonenumber'),
      p('date_of_birth', 'Date of birth', 'date', 'date', { dataSensitivity: 'sensitive' }),
      p('gatehouse_national_id', 'National ID', 'string', 'text', { dataSensitivity: 'highly_sensitive' }),
      p('gatehouse_consent', 'Consent purposes', 'string', 'text'),
    ],
    deals: [
      ...common,
      p('createdate', 'Create Date', 'datetime', 'date', readOnly),
      p('dealname', 'Deal Name', 'string', 'text'),
      p('gatehouse_company_id', 'Company ID', 'number', 'number'),
      p('dealstage', 'Deal Stage', 'string', 'text'),
      p('amount', 'Amount', 'number', 'number'),
      p('closedate', 'Close Date', 'datetime', 'date'),
    ],
    notes: [
      ...common,
      p('hs_createdate', 'Created at', 'datetime', 'date', readOnly),
      p('hs_timestamp', 'Activity date', 'datetime', 'date'),
      p('hs_note_body', 'Note body', 'string', 'html'),
      p('gatehouse_author', 'Author', 'string', 'text'),
      p('gatehouse_company_id', 'Company ID', 'number', 'number'),
      p('gatehouse_contact_id', 'Contact ID', 'number', 'number'),
      p('gatehouse_deal_id', 'Deal ID', 'number', 'number'),
    ],
  };
}
