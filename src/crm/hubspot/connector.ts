import type { Dispatcher } from 'undici';
import { ConfigError, InputError } from '../../errors/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { checkMetric } from '../embedded.js';
import { normalizeExpression, type NormalExpr } from '../expression.js';
import { crmObjects, specOf, territories, type FieldSpec, type ObjectSpec } from '../metadata.js';
import type {
  AggregateGroup,
  AggregateRequest,
  CrmConnector,
  CrmIdentity,
  CrmObject,
  CrmRecord,
  CrmSurvey,
  DataClass,
  ObjectMeta,
  QueryRequest,
} from '../types.js';
import {
  checkValues,
  maxLimit,
  normalizeWhere,
  parentFields,
  parentFrom,
  pick,
  satisfies,
  selectColumns,
  updateOf,
  type NormalCondition,
  type Scalar,
} from '../validate.js';
import { createHubSpotClient, type HubSpotClient } from './client.js';
import {
  gatehouseId,
  hubspotId,
  impliedClass,
  noteAssociationTypes,
  objectTypes,
  propertyMaps,
  stricterClass,
  type PropertyDefinition,
  type PropertyMap,
} from './mapping.js';
import { toFilterGroups, type Encoder } from './search.js';

/**
 * The HubSpot connector: the CrmConnector contract over CRM v3 objects, search and properties. Reads
 * by id fetch the record with an explicit property list and apply the row filter here, before anything
 * is returned (search is eventually consistent, so a record just written would look missing); lists,
 * counts and aggregates put the row filter into the search's filterGroups.
 */

export interface HubSpotOptions {
  /** `https://api.hubapi.com`, or the fake's URL. */
  baseUrl: string;
  /** The private app's access token, from Gatehouse's secrets. */
  token: () => Promise<string>;
  /** Per object, field → HubSpot property, over the defaults (src/crm/hubspot/mapping.ts). */
  properties?: Partial<Record<CrmObject, Record<string, string>>>;
  /** Per object, another HubSpot object type (a custom object's `p_name`, say). */
  objects?: Partial<Record<CrmObject, string>>;
  /** Per object, property → data class; wins over what HubSpot's metadata implies. */
  dataClasses?: Partial<Record<CrmObject, Record<string, DataClass>>>;
  /** Calls kept back from the portal's daily limit; below it requests are refused (429) locally. */
  dailyReserve?: number;
  /** A HubSpot call taking longer fails; default 10 s. */
  timeoutMs?: number;
  /** How often the owners (identity mapping) are read again. */
  ownerRefreshSeconds?: number;
  onRefreshError?: (error: unknown) => void;
  /** The connection pool trusting `crm.caFile`. */
  dispatcher?: Dispatcher;
}

export interface HubSpotConnector extends CrmConnector {
  /**
   * Who a Gatehouse user is in HubSpot: the owner with their e-mail (HubSpot owners carry no federation
   * id), the primary team's name as territory.
   */
  identity(user: { email: string; federationId?: string }): CrmIdentity | undefined;
  refreshOwners(): Promise<void>;
  survey(): Promise<CrmSurvey[]>;
  close(): void;
}

interface HubSpotObject {
  id: string;
  properties: Record<string, string | null>;
}
interface SearchAnswer {
  total: number;
  results: HubSpotObject[];
}

/** HubSpot answers at most 200 records a search page and 10,000 for one query. */
const pageSize = 200;
const maxAggregated = 10_000;
/** Primary associations: contact → company and deal → company. */
const primaryCompany: Record<string, number> = { contact: 1, opportunity: 5 };

export async function createHubSpotConnector(options: HubSpotOptions): Promise<HubSpotConnector> {
  const client = createHubSpotClient({
    baseUrl: options.baseUrl,
    token: options.token,
    dailyReserve: options.dailyReserve ?? 1000,
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  const maps = propertyMaps(options.properties);
  const types: Record<CrmObject, string> = { ...objectTypes, ...options.objects };
  const definitions = await loadDefinitions(client, maps, types);
  const metas = new Map(
    crmObjects.map((object) => [
      object,
      classify(object, maps[object], definitions[object], options.dataClasses?.[object] ?? {}),
    ]),
  );
  const owners = ownerDirectory(client);
  await owners.refresh();
  const timer = setInterval(
    () => owners.refresh().catch((error: unknown) => options.onRefreshError?.(error)),
    (options.ownerRefreshSeconds ?? 900) * 1000,
  );
  timer.unref();

  const propertyOf = (object: CrmObject, field: string) =>
    field === 'id' ? 'hs_object_id' : (maps[object][field] as string);
  const definitionOf = (object: CrmObject, field: string) =>
    definitions[object].get(propertyOf(object, field)) as PropertyDefinition;

  /** A HubSpot property value as Gatehouse's value of the field. */
  const decode = (
    object: CrmObject,
    field: FieldSpec,
    raw: string | null | undefined,
  ): string | number | null => {
    if (raw === null || raw === undefined) return null;
    if (field.name === 'id') return gatehouseId(object, raw);
    if (field.references) return raw === '' ? null : gatehouseId(field.references, raw);
    if (field.name === 'owner') return owners.emailOf(raw) ?? null;
    if (field.type === 'number') return raw === '' ? null : Number(raw);
    // HubSpot answers dates and times as ISO text, and in some APIs as milliseconds since the epoch.
    const instant = /^\d+$/.test(raw) ? new Date(Number(raw)).toISOString() : raw;
    if (field.type === 'date') return instant.slice(0, 10);
    if (field.type === 'datetime') return new Date(instant).toISOString();
    return raw;
  };

  /** A Gatehouse value as the property value HubSpot stores; `filter` encodes dates as instants. */
  const encode = (
    object: CrmObject,
    field: FieldSpec,
    value: Scalar | null,
    filter: boolean,
  ): string | null => {
    if (value === null) return null;
    if (field.name === 'id' || field.references) {
      // An id of another shape names no HubSpot record: -1 matches none (and `ne` all that have one).
      return hubspotId(field.references ?? object, String(value)) ?? '-1';
    }
    if (field.name === 'owner') {
      const owner = owners.identify(String(value));
      if (owner) return owner.crmUserId;
      if (filter) return '-1';
      throw new InputError('owner is not a HubSpot owner of this portal', { field: 'owner' });
    }
    if (field.type === 'number') return String(value);
    if (field.type === 'date' || field.type === 'datetime') {
      const text = String(value);
      const instant = Date.parse(
        text.length === 10
          ? `${text}T00:00:00Z`
          : text.endsWith('Z') || text.length <= 10
            ? text
            : `${text}Z`,
      );
      if (filter) return String(instant);
      return definitionOf(object, field.name).type === 'date'
        ? text.slice(0, 10)
        : new Date(instant).toISOString();
    }
    return String(value);
  };

  const encoderOf = (object: CrmObject): Encoder => {
    const spec = specOf(object);
    return {
      property: (field) => propertyOf(object, field),
      value: (field, value) => encode(object, spec.fields.get(field) as FieldSpec, value, true) ?? '',
    };
  };

  const decodeRecord = (object: CrmObject, found: HubSpotObject, columns: readonly string[]): CrmRecord => {
    const spec = specOf(object);
    const record: CrmRecord = { id: gatehouseId(object, found.id) };
    for (const name of columns) {
      if (name === 'id') continue;
      record[name] = decode(
        object,
        spec.fields.get(name) as FieldSpec,
        found.properties[propertyOf(object, name)],
      );
    }
    return record;
  };

  const objectPath = (object: CrmObject) => `/crm/v3/objects/${encodeURIComponent(types[object])}`;

  /** The record by id with the named fields, or undefined when missing or outside `conditions`. */
  async function read(
    object: CrmObject,
    id: string,
    columns: readonly string[],
    conditions: readonly NormalCondition[],
  ) {
    const hsId = hubspotId(object, id);
    if (hsId === undefined) return undefined;
    const wanted = [...new Set([...columns, ...conditions.map((c) => c.field)])];
    const properties = wanted.filter((f) => f !== 'id').map((f) => propertyOf(object, f));
    const query = properties.length ? `?properties=${encodeURIComponent(properties.join(','))}` : '';
    const found = await client.request<HubSpotObject>('GET', `${objectPath(object)}/${hsId}${query}`);
    if (!found) return undefined;
    const record = decodeRecord(object, found, wanted);
    // The row filter, applied before the record goes anywhere: excluded looks exactly like missing.
    if (!conditions.every((c) => satisfies(c, record[c.field]))) return undefined;
    return record;
  }

  /** Records matching, in id order, from the keyset position `after`, at most `limit` of them. */
  async function search(
    object: CrmObject,
    conditions: readonly NormalCondition[],
    expression: NormalExpr | undefined,
    columns: readonly string[],
    limit: number,
    after?: string,
  ): Promise<CrmRecord[]> {
    const out: CrmRecord[] = [];
    let position = after;
    const properties = columns.filter((f) => f !== 'id').map((f) => propertyOf(object, f));
    while (out.length < limit) {
      const filterGroups = toFilterGroups(conditions, expression, encoderOf(object), position);
      if (!filterGroups) break;
      const asked = Math.min(pageSize, limit - out.length);
      const answer = await client.request<SearchAnswer>('POST', `${objectPath(object)}/search`, {
        filterGroups,
        sorts: [{ propertyName: 'hs_object_id', direction: 'ASCENDING' }],
        properties,
        limit: asked,
      });
      const results = answer?.results ?? [];
      for (const found of results) out.push(decodeRecord(object, found, columns));
      if (results.length < asked) break;
      position = results[results.length - 1]?.id;
    }
    return out;
  }

  async function count(object: CrmObject, conditions: readonly NormalCondition[], expression?: NormalExpr) {
    const filterGroups = toFilterGroups(conditions, expression, encoderOf(object));
    if (!filterGroups) return 0;
    const answer = await client.request<SearchAnswer>('POST', `${objectPath(object)}/search`, {
      filterGroups,
      properties: [],
      limit: 1,
    });
    return answer?.total ?? 0;
  }

  async function write(
    object: CrmObject,
    hsId: string | undefined,
    values: CrmRecord,
    associations: unknown[] = [],
  ) {
    const spec = specOf(object);
    const properties: Record<string, string | null> = {};
    for (const [name, value] of Object.entries(values)) {
      properties[propertyOf(object, name)] = encode(object, spec.fields.get(name) as FieldSpec, value, false);
    }
    if (hsId !== undefined) {
      await client.request('PATCH', `${objectPath(object)}/${hsId}`, { properties });
      return hsId;
    }
    // A note is an engagement: HubSpot requires the time it is about.
    if (object === 'note') properties.hs_timestamp = new Date().toISOString();
    const created = await client.request<HubSpotObject>('POST', objectPath(object), {
      properties,
      ...(associations.length ? { associations } : {}),
    });
    if (!created?.id) throw new Error('HubSpot answered a create without an id');
    return created.id;
  }

  /** Every child of `object` record `id` (by the property that holds the parent), for cascades. */
  async function children(parent: CrmObject, id: string): Promise<[CrmObject, string][]> {
    const links: [CrmObject, string][] =
      parent === 'account'
        ? [
            ['contact', 'account_id'],
            ['opportunity', 'account_id'],
            ['note', 'account_id'],
          ]
        : parent === 'contact'
          ? [['note', 'contact_id']]
          : parent === 'opportunity'
            ? [['note', 'opportunity_id']]
            : [];
    const out: [CrmObject, string][] = [];
    for (const [child, field] of links) {
      let after: string | undefined;
      for (;;) {
        const page = await search(
          child,
          [{ field, op: 'eq', value: id }],
          undefined,
          ['id'],
          pageSize,
          after,
        );
        for (const record of page) out.push([child, String(record.id)]);
        if (page.length < pageSize) break;
        after = hubspotId(child, String(page[page.length - 1]?.id));
      }
    }
    return out;
  }

  /** The parent a child takes territory and owner from (`parentFrom`, shared with Salesforce). */
  function parentOf(
    spec: ObjectSpec,
    values: CrmRecord,
    conditions: readonly NormalCondition[],
  ): Promise<CrmRecord> {
    return parentFrom(spec, values, conditions, read);
  }

  function associationsOf(object: CrmObject, values: CrmRecord): unknown[] {
    const to = (target: CrmObject, id: unknown, typeId: number) => {
      const hsId = typeof id === 'string' ? hubspotId(target, id) : undefined;
      return hsId === undefined
        ? []
        : [
            {
              to: { id: hsId },
              types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId }],
            },
          ];
    };
    if (object === 'contact' || object === 'opportunity')
      return to('account', values.account_id, primaryCompany[object] as number);
    if (object !== 'note') return [];
    return [
      ...to('account', values.account_id, noteAssociationTypes.account_id as number),
      ...to('contact', values.contact_id, noteAssociationTypes.contact_id as number),
      ...to('opportunity', values.opportunity_id, noteAssociationTypes.opportunity_id as number),
    ];
  }

  return {
    name: 'hubspot',

    describe(object) {
      const meta = metas.get(specOf(object).object);
      if (!meta) throw new TypeError(`unknown CRM object: ${String(object).slice(0, 32)}`);
      return meta;
    },

    async get(object, id, fields, where) {
      const spec = specOf(object);
      const columns = selectColumns(spec, fields);
      const conditions = normalizeWhere(spec, where);
      if (typeof id !== 'string') throw new TypeError('id must be a string');
      if (!conditions) return undefined;
      const record = await read(object, id, columns, conditions);
      return record ? pick(record, columns) : undefined;
    },

    async query(object, req: QueryRequest) {
      const spec = specOf(object);
      const columns = selectColumns(spec, req.fields);
      const conditions = normalizeWhere(spec, req.where);
      const expression = req.filter === undefined ? undefined : normalizeExpression(spec, req.filter);
      checkLimit(req.limit);
      const after =
        req.cursor === undefined ? undefined : cursorPosition(object, decodeCursor(object, req.cursor));
      if (!conditions) return { records: [] };
      // One record more than asked tells whether another page exists.
      const rows = await search(object, conditions, expression, columns, req.limit + 1, after);
      if (rows.length <= req.limit) return { records: rows };
      const records = rows.slice(0, req.limit);
      return { records, nextCursor: encodeCursor(object, String(records[req.limit - 1]?.id)) };
    },

    async count(object, where = [], expr?) {
      const spec = specOf(object);
      const conditions = normalizeWhere(spec, where);
      const expression = expr === undefined ? undefined : normalizeExpression(spec, expr);
      return conditions ? count(object, conditions, expression) : 0;
    },

    async create(object, input) {
      const spec = specOf(object);
      const values = checkValues(spec, input, 'create');
      const derived = object === 'account' ? {} : await parentOf(spec, values, []);
      const stored = { ...values, ...derived };
      const hsId = await write(object, undefined, stored, associationsOf(object, stored));
      return { id: gatehouseId(object, hsId), ...pick(values, Object.keys(input)), ...derived };
    },

    /**
     * Check, then update: HubSpot has no conditional update, so the version in `where` (If-Match) is
     * compared on a read just before the PATCH. A change landing between the two is overwritten; the
     * window is one round trip (README "Connecting HubSpot").
     */
    async update(object, id, input, where) {
      const spec = specOf(object);
      const values = checkValues(spec, input, 'update');
      const conditions = normalizeWhere(spec, where);
      if (typeof id !== 'string') throw new TypeError('id must be a string');
      if (!conditions) return undefined;
      const parents = parentFields.filter((f) => spec.fields.has(f));
      const existing = await read(object, id, ['territory', 'owner', ...parents], conditions);
      if (!existing) return undefined;
      if (Object.keys(values).length === 0) return { id };
      const { next, derived } = await updateOf(object, values, existing, conditions, () =>
        parentOf(spec, { ...pick(existing, parents), ...values }, conditions),
      );
      const hsId = hubspotId(object, id) as string;
      await write(object, hsId, next);
      const moved = pick(next, ['territory', 'owner']);
      if (Object.keys(moved).length > 0) {
        // Children follow their account, as in the embedded CRM (HubSpot itself does not cascade).
        for (const [child, childId] of await children(object, id)) {
          await write(child, hubspotId(child, childId), {
            ...moved,
            ...(child === 'note' && next.account_id ? { account_id: next.account_id } : {}),
          });
        }
      }
      return { id, ...pick(values, Object.keys(input)), ...derived };
    },

    async delete(object, id, where) {
      const spec = specOf(object);
      const conditions = normalizeWhere(spec, where);
      if (typeof id !== 'string') throw new TypeError('id must be a string');
      if (!conditions) return false;
      if (!(await read(object, id, ['id'], conditions))) return false;
      // Dependents first, as Salesforce and the embedded CRM do; HubSpot would leave them orphaned.
      for (const [child, childId] of await children(object, id)) {
        await client.request('DELETE', `${objectPath(child)}/${hubspotId(child, childId)}`);
      }
      await client.request('DELETE', `${objectPath(object)}/${hubspotId(object, id)}`);
      return true;
    },

    async aggregate(object, req: AggregateRequest) {
      const spec = specOf(object);
      const groupBy = req.groupBy === undefined ? undefined : selectColumns(spec, [req.groupBy])[1];
      const metrics = req.metrics.map((metric) => checkMetric(spec, metric));
      const conditions = normalizeWhere(spec, req.where);
      const expression = req.filter === undefined ? undefined : normalizeExpression(spec, req.filter);
      checkLimit(req.limit);
      if (!conditions) return { groups: [], truncated: false };
      // HubSpot has no aggregation API: the matching records are read (at most 10,000) and summed here.
      const total = await count(object, conditions, expression);
      if (total > maxAggregated) {
        throw new InputError(
          `HubSpot can aggregate at most ${maxAggregated} records per request; narrow the filter`,
          { parameter: 'filter' },
        );
      }
      const columns = [
        ...new Set([
          'id',
          ...(groupBy ? [groupBy] : []),
          ...metrics.flatMap((m) => (m.field ? [m.field] : [])),
        ]),
      ];
      const rows = await search(object, conditions, expression, columns, maxAggregated);
      return summarize(rows, groupBy, req.bucket, metrics, req.limit);
    },

    identity: (user) => owners.identify(user.email),
    refreshOwners: () => owners.refresh(),
    async survey() {
      // What the portal offers now, not what it offered at start.
      const live = await loadDefinitions(client, maps, types);
      return crmObjects.map((object) => {
        const mappedTo = new Map(Object.entries(maps[object]).map(([field, property]) => [property, field]));
        mappedTo.set('hs_object_id', 'id');
        return {
          object,
          vendorObject: types[object],
          fields: [...live[object].values()].map((d) => {
            const field = mappedTo.get(d.name);
            const suggested = impliedClass(d);
            return {
              name: d.name,
              label: d.label,
              type: `${d.type}/${d.fieldType}`,
              ...(d.dataSensitivity ? { classification: d.dataSensitivity } : {}),
              ...(field ? { mappedTo: field } : {}),
              ...(suggested ? { suggested } : {}),
            };
          }),
        };
      });
    },
    close: () => clearInterval(timer),
  };
}

/** The HubSpot id a page starts after; a cursor with an id of another shape was not issued here. */
function cursorPosition(object: CrmObject, id: string): string {
  const position = hubspotId(object, id);
  if (position === undefined) {
    throw new InputError('cursor is not valid for this list; start again without a cursor', {
      parameter: 'cursor',
    });
  }
  return position;
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
    throw new TypeError(`limit must be an integer from 1 to ${maxLimit}`);
  }
}

/**
 * Every mapped property must exist in the portal: a missing one is a configuration mistake found at
 * start, not a field that silently reads as empty.
 */
async function loadDefinitions(
  client: HubSpotClient,
  maps: Record<CrmObject, PropertyMap>,
  types: Record<CrmObject, string>,
): Promise<Record<CrmObject, Map<string, PropertyDefinition>>> {
  const out = {} as Record<CrmObject, Map<string, PropertyDefinition>>;
  for (const object of crmObjects) {
    const answer = await client.request<{ results: PropertyDefinition[] }>(
      'GET',
      `/crm/v3/properties/${encodeURIComponent(types[object])}`,
    );
    const byName = new Map((answer?.results ?? []).map((d) => [d.name, d]));
    const missing = Object.values(maps[object]).filter((name) => !byName.has(name));
    if (missing.length > 0) {
      throw new ConfigError(
        `HubSpot ${types[object]} have no properties ${missing.join(', ')}; create them (README "Connecting HubSpot") or map ${object} fields elsewhere in crm.hubspot.properties`,
      );
    }
    out[object] = byName;
  }
  return out;
}

/** Gatehouse's metadata, each field's class raised where HubSpot's property metadata says it is more sensitive. */
function classify(
  object: CrmObject,
  map: PropertyMap,
  definitions: ReadonlyMap<string, PropertyDefinition>,
  configured: Readonly<Record<string, DataClass>>,
): ObjectMeta {
  const meta = specOf(object).meta;
  return Object.freeze({
    ...meta,
    fields: Object.freeze(
      meta.fields.map((field) => {
        const property = map[field.name];
        const definition = property === undefined ? undefined : definitions.get(property);
        const dataClass =
          (property !== undefined && configured[property]) ||
          (definition ? stricterClass(field.dataClass, impliedClass(definition)) : field.dataClass);
        return Object.freeze({ ...field, dataClass });
      }),
    ),
  });
}

/** Counts and metrics per group, in group order (empty values first, as in SQL), at most `limit` groups. */
function summarize(
  rows: readonly CrmRecord[],
  groupBy: string | undefined,
  bucket: AggregateRequest['bucket'],
  metrics: readonly ReturnType<typeof checkMetric>[],
  limit: number,
): { groups: AggregateGroup[]; truncated: boolean } {
  const groups = new Map<string | number | null, CrmRecord[]>();
  for (const row of rows) {
    let key = groupBy ? (row[groupBy] ?? null) : null;
    if (bucket === 'month' && typeof key === 'string') key = key.slice(0, 7);
    const members = groups.get(key) ?? [];
    members.push(row);
    groups.set(key, members);
  }
  if (!groupBy && groups.size === 0) groups.set(null, []);
  const keys = [...groups.keys()].sort((a, b) =>
    a === null ? -1 : b === null ? 1 : a < b ? -1 : a > b ? 1 : 0,
  );
  const out = keys.slice(0, limit).map((key) => {
    const members = groups.get(key) as CrmRecord[];
    return { key, count: members.length, values: metrics.map((m) => metricOf(members, m)) };
  });
  return { groups: out, truncated: keys.length > limit };
}

function metricOf(
  rows: readonly CrmRecord[],
  metric: ReturnType<typeof checkMetric>,
): number | string | null {
  if (metric.fn === 'count') return rows.length;
  const values = rows
    .map((r) => r[metric.field as string])
    .filter((v): v is string | number => v !== null && v !== undefined && v !== '');
  if (values.length === 0) return null;
  if (metric.fn === 'sum') return values.reduce<number>((n, v) => n + Number(v), 0);
  if (metric.fn === 'avg') return values.reduce<number>((n, v) => n + Number(v), 0) / values.length;
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const value = metric.fn === 'min' ? sorted[0] : sorted[sorted.length - 1];
  return metric.numeric ? Number(value) : String(value);
}

/** The owners API as the identity mapping: e-mail ↔ owner id, and the primary team as territory. */
function ownerDirectory(client: HubSpotClient) {
  let byEmail = new Map<string, CrmIdentity>();
  let byId = new Map<string, string>();
  return {
    async refresh() {
      const emails = new Map<string, CrmIdentity>();
      const ids = new Map<string, string>();
      let after: string | undefined;
      do {
        const query = `?limit=100&archived=false${after ? `&after=${encodeURIComponent(after)}` : ''}`;
        const answer = await client.request<{
          results: { id: string; email?: string; teams?: { name: string; primary?: boolean }[] }[];
          paging?: { next?: { after: string } };
        }>('GET', `/crm/v3/owners${query}`);
        for (const owner of answer?.results ?? []) {
          if (!owner.email) continue;
          const team = owner.teams?.find((t) => t.primary)?.name;
          const territory = (territories as readonly string[]).includes(team ?? '') ? team : undefined;
          emails.set(owner.email.toLowerCase(), {
            crmUserId: String(owner.id),
            email: owner.email.toLowerCase(),
            ...(territory ? { territory } : {}),
          });
          ids.set(String(owner.id), owner.email.toLowerCase());
        }
        after = answer?.paging?.next?.after;
      } while (after);
      // Swapped whole, so a failed refresh keeps the previous mapping.
      byEmail = emails;
      byId = ids;
    },
    identify: (email: string) => byEmail.get(email.toLowerCase()),
    emailOf: (id: string) => byId.get(id),
  };
}
