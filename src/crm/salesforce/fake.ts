import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify, type CryptoKey, type KeyObject } from 'jose';
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { GatehouseError } from '../../errors/index.js';
import type { Db } from '../../store/index.js';
import { createEmbeddedCrm } from '../embedded.js';
import type { CrmRecord } from '../types.js';
import { fakeObject, type FakeObject, type SfFieldType } from './fake-schema.js';
import {
  parseSoql,
  SoqlError,
  type SoqlCondition,
  type SoqlQuery,
  type SoqlSelectItem,
  type SoqlValue,
} from './soql-parse.js';

/**
 * A Salesforce org on loopback, for tests, the bench and `serve --demo --crm salesforce`. It answers the
 * REST API's documented shapes: the JWT bearer token endpoint (RFC 7523), query and queryMore
 * (`{totalSize, done, records, nextRecordsUrl}`), sObject describe, create, update (honouring
 * `If-Unmodified-Since`) and delete, errors as arrays of `{message, errorCode, fields}`, and
 * `Sforce-Limit-Info` on every data call. Queries go through a strict SOQL subset parser and run on the
 * crm_* tables of its own store, seeded like the embedded CRM, so it holds the same records.
 */

export interface FakeUser {
  email: string;
  territory?: string;
  federationId?: string;
}

export interface SalesforceFakeOptions {
  /** The fake org's own store: its crm_* tables are the org's records. */
  db: Db;
  /** The connected app's consumer key, and the certificate's public key it verifies assertions with. */
  clientId: string;
  publicKey: CryptoKey | KeyObject;
  /** The integration user the connected app is pre-authorised for (the assertion's `sub`). */
  username: string;
  /** Users of the org besides the integration user (record owners, Gatehouse users). */
  users: readonly FakeUser[];
  /** Daily API request allowance, reported in Sforce-Limit-Info. */
  dailyLimit?: number;
  /** Records per query batch before nextRecordsUrl (Salesforce's default is 2000). */
  batchSize?: number;
}

export interface SalesforceFake {
  readonly url: string;
  /** API requests counted today and the allowance. */
  usage(): { used: number; max: number };
  /** Sets today's count (tests: an org near its daily limit). */
  setUsage(used: number): void;
  /** The next `count` data calls answer this status and errorCode (tests: an org that fails). */
  failNext(count: number, status: number, errorCode: string): void;
  /** Every SOQL statement received, in order (tests check what the connector sent). */
  readonly queries: string[];
  close(): Promise<void>;
}

type Row = Record<string, unknown>;
type SfError = { status: number; errorCode: string; message: string; fields?: string[] };

const apiVersion = '62.0';
const locatorCap = 100;
const stringTypes = new Set<SfFieldType>([
  'id',
  'string',
  'textarea',
  'email',
  'phone',
  'picklist',
  'reference',
]);
const numberTypes = new Set<SfFieldType>(['currency', 'double']);
const idPattern = /^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$/;

class FakeError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields?: string[],
  ) {
    super(message);
  }
}

export async function startSalesforceFake(options: SalesforceFakeOptions): Promise<SalesforceFake> {
  const db = options.db as unknown as Kysely<Record<string, Row>>;
  await prepareUsers(db, options);
  const embedded = createEmbeddedCrm(options.db);
  const batchSize = options.batchSize ?? 2000;
  const max = options.dailyLimit ?? 15_000;
  let used = 0;
  // The allowance is per day (UTC here; an org's is a rolling 24 hours).
  let day = new Date().toISOString().slice(0, 10);
  let failures: { count: number; status: number; errorCode: string } | undefined;
  const sessions = new Map<string, string>();
  const locators = new Map<string, Row[]>();
  const queries: string[] = [];
  let url = '';

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const e = toSfError(error);
      send(response, e.status, [{ message: e.message, errorCode: e.errorCode, fields: e.fields ?? [] }]);
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = new URL(request.url ?? '/', url);
    const body = await readBody(request);
    if (target.pathname === '/services/oauth2/token' && request.method === 'POST') {
      return token(body, response);
    }
    const match = /^\/services\/data\/v(\d+\.\d)\/(.*)$/.exec(target.pathname);
    if (!match) throw new FakeError(404, 'NOT_FOUND', 'The requested resource does not exist');
    const auth = request.headers.authorization ?? '';
    const session = auth.startsWith('Bearer ') ? sessions.get(auth.slice(7)) : undefined;
    if (!session) throw new FakeError(401, 'INVALID_SESSION_ID', 'Session expired or invalid');
    if (match[1] !== apiVersion)
      throw new FakeError(404, 'NOT_FOUND', 'The requested resource does not exist');
    const today = new Date().toISOString().slice(0, 10);
    if (today !== day) [day, used] = [today, 0];
    used++;
    response.setHeader('Sforce-Limit-Info', `api-usage=${used}/${max}`);
    if (used > max) throw new FakeError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');
    if (failures && failures.count > 0) {
      failures.count--;
      throw new FakeError(
        failures.status,
        failures.errorCode,
        'The service is unavailable; try again later.',
      );
    }
    const rest = match[2] as string;
    const method = request.method ?? 'GET';
    if (rest === 'query' && method === 'GET') {
      const q = target.searchParams.get('q');
      if (!q) throw new FakeError(400, 'MALFORMED_QUERY', 'A query string is required');
      queries.push(q);
      return send(response, 200, await runQuery(parseSoql(q)));
    }
    const more = /^query\/(01g[0-9A-Za-z]+)-(\d+)$/.exec(rest);
    if (more && method === 'GET') return send(response, 200, nextBatch(more[1] as string, Number(more[2])));
    const describe = /^sobjects\/(\w+)\/describe$/.exec(rest);
    if (describe && method === 'GET')
      return send(response, 200, describeObject(objectOf(describe[1] as string)));
    const create = /^sobjects\/(\w+)$/.exec(rest);
    if (create && method === 'POST') {
      const id = await createRecord(objectOf(create[1] as string), parseJson(body));
      return send(response, 201, { id, success: true, errors: [] });
    }
    const one = /^sobjects\/(\w+)\/([0-9A-Za-z]+)$/.exec(rest);
    if (one && method === 'PATCH') {
      await updateRecord(objectOf(one[1] as string), one[2] as string, parseJson(body), request.headers);
      return send(response, 204);
    }
    if (one && method === 'DELETE') {
      await deleteRecord(objectOf(one[1] as string), one[2] as string);
      return send(response, 204);
    }
    throw new FakeError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  async function token(body: string, response: ServerResponse): Promise<void> {
    const form = new URLSearchParams(body);
    const fail = (description: string) =>
      send(response, 400, { error: 'invalid_grant', error_description: description });
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return send(response, 400, {
        error: 'unsupported_grant_type',
        error_description: 'grant type not supported',
      });
    }
    try {
      const { payload } = await jwtVerify(form.get('assertion') ?? '', options.publicKey, {
        algorithms: ['RS256'],
        issuer: options.clientId,
        audience: [url, 'https://login.salesforce.com', 'https://test.salesforce.com'],
        subject: options.username,
        requiredClaims: ['exp'],
      });
      // Salesforce takes an assertion that expires within three minutes, and no longer.
      if ((payload.exp as number) > Date.now() / 1000 + 300)
        return fail('expiration time is too far in the future');
    } catch {
      return fail('invalid assertion');
    }
    const accessToken = `00D000000000001!${randomBytes(32).toString('base64url')}`;
    sessions.set(accessToken, options.username);
    const user = await db
      .selectFrom('fake_sf_users')
      .select('id')
      .where('username', '=', options.username)
      .executeTakeFirst();
    return send(response, 200, {
      access_token: accessToken,
      scope: 'api',
      instance_url: url,
      id: `${url}/id/00D000000000001AAA/${String(user?.id)}`,
      token_type: 'Bearer',
      issued_at: String(Date.now()),
    });
  }

  function objectOf(name: string): FakeObject {
    const object = fakeObject(name);
    if (!object) {
      throw new FakeError(404, 'NOT_FOUND', `The requested resource does not exist`);
    }
    return object;
  }

  async function runQuery(query: SoqlQuery): Promise<Row> {
    const object = fakeObject(query.from);
    if (!object) {
      throw new SoqlError(
        'INVALID_TYPE',
        `sObject type '${query.from}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.`,
      );
    }
    const resolve = (path: string) => resolvePath(object, path);
    const items: Array<{ key: string; path: string; type: SfFieldType; sql: string; aggregate?: string }> =
      [];
    let exprIndex = 0;
    const select = expandFields(object, query.select);
    const aggregated = select.some((item) => item.kind === 'aggregate');
    const countOnly =
      select.length === 1 && select[0]?.kind === 'aggregate' && select[0].fn === 'COUNT' && !select[0].path;
    if (!countOnly && select.some((item) => item.kind === 'aggregate' && item.fn === 'COUNT' && !item.path)) {
      throw new SoqlError('MALFORMED_QUERY', 'COUNT() must be the only element in the SELECT list');
    }
    for (const item of select) {
      if (item.kind === 'field') {
        const field = resolve(item.path);
        if (aggregated && (!query.groupBy || resolve(query.groupBy).name !== field.name)) {
          throw new SoqlError('MALFORMED_QUERY', `Field ${item.path} must be grouped or aggregated`);
        }
        // An aggregate result names a grouped field by its last segment (`Email` for `Owner.Email`).
        items.push({
          key: field.name.split('.').pop() as string,
          path: field.name,
          type: field.type,
          sql: field.sql,
        });
      } else if (item.kind === 'aggregate' && item.path) {
        const field = resolve(item.path);
        if ((item.fn === 'SUM' || item.fn === 'AVG') && !numberTypes.has(field.type)) {
          throw new SoqlError(
            'INVALID_FIELD',
            `field ${item.path} does not support aggregate operator ${item.fn}`,
          );
        }
        const key = item.alias ?? `expr${exprIndex++}`;
        items.push({
          key,
          path: key,
          type: item.fn === 'COUNT' ? 'double' : field.type,
          sql: field.sql,
          aggregate: item.fn,
        });
      }
    }
    if (query.groupBy && !aggregated) {
      throw new SoqlError('MALFORMED_QUERY', 'GROUP BY needs an aggregate function in the SELECT list');
    }
    const where = query.where ? compileCondition(object, query.where) : sql<SqlBool>`1 = 1`;
    const from = sql.table(object.table);
    if (countOnly) {
      const row = await sql<{ n: number }>`select count(*) as n from ${from} where ${where}`.execute(db);
      return { totalSize: Number(row.rows[0]?.n ?? 0), done: true, records: [] };
    }
    const columns = items.map((item, i) =>
      item.aggregate
        ? sql`${sql.raw(item.aggregate === 'COUNT' ? 'count' : item.aggregate.toLowerCase())}(${sql.raw(item.sql)}) as ${sql.ref(`c${i}`)}`
        : sql`${sql.raw(item.sql)} as ${sql.ref(`c${i}`)}`,
    );
    const group = query.groupBy ? sql` group by ${sql.raw(resolve(query.groupBy).sql)}` : sql``;
    let order = sql``;
    if (query.orderBy) {
      const field = resolve(query.orderBy.path);
      order = sql` order by ${sql.raw(field.sql)} ${sql.raw(query.orderBy.descending ? 'desc' : 'asc')}`;
    }
    const limit = query.limit === undefined ? sql`` : sql` limit ${query.limit}`;
    const result =
      await sql<Row>`select ${sql.join(columns)} from ${from} where ${where}${group}${order}${limit}`.execute(
        db,
      );
    const records = result.rows.map((row) => {
      if (aggregated) {
        const out: Row = { attributes: { type: 'AggregateResult' } };
        items.forEach((item, i) => (out[item.key] = outputValue(item.type, row[`c${i}`])));
        return out;
      }
      const out: Row = {
        attributes: {
          type: object.name,
          url: `/services/data/v${apiVersion}/sobjects/${object.name}/${String(row.c0 ?? '')}`,
        },
      };
      items.forEach((item, i) => setPath(out, item.path, outputValue(item.type, row[`c${i}`])));
      return out;
    });
    return page(records, records.length);
  }

  function page(records: Row[], totalSize: number): Row {
    if (records.length <= batchSize) return { totalSize, done: true, records };
    const locator = `01g${randomUUID().replaceAll('-', '').slice(0, 15)}`;
    locators.set(locator, records);
    if (locators.size > locatorCap) locators.delete(locators.keys().next().value as string);
    return {
      totalSize,
      done: false,
      nextRecordsUrl: `/services/data/v${apiVersion}/query/${locator}-${batchSize}`,
      records: records.slice(0, batchSize),
    };
  }

  function nextBatch(locator: string, offset: number): Row {
    const records = locators.get(locator);
    if (!records || offset >= records.length) {
      throw new FakeError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    }
    const end = offset + batchSize;
    if (end >= records.length) locators.delete(locator);
    return {
      totalSize: records.length,
      done: end >= records.length,
      ...(end < records.length
        ? { nextRecordsUrl: `/services/data/v${apiVersion}/query/${locator}-${end}` }
        : {}),
      records: records.slice(offset, end),
    };
  }

  function compileCondition(object: FakeObject, condition: SoqlCondition): RawBuilder<SqlBool> {
    switch (condition.kind) {
      case 'and':
      case 'or':
        return sql<SqlBool>`(${sql.join(
          condition.items.map((item) => compileCondition(object, item)),
          sql.raw(condition.kind === 'and' ? ' and ' : ' or '),
        )})`;
      case 'not':
        return sql<SqlBool>`(not ${compileCondition(object, condition.item)})`;
      case 'compare': {
        const field = resolvePath(object, condition.path);
        const column = sql.raw(field.sql);
        if (condition.value.kind === 'null') {
          if (condition.op === '=') return sql<SqlBool>`(${column} is null)`;
          if (condition.op === '!=') return sql<SqlBool>`(${column} is not null)`;
          throw new SoqlError('MALFORMED_QUERY', `invalid operator on null for field ${field.name}`);
        }
        const value = storedValue(field, condition.value);
        // Every comparison is definitely true or false, as in SOQL: `!=` matches an empty field.
        if (condition.op === '!=') return sql<SqlBool>`(${column} is null or ${column} <> ${value})`;
        return sql<SqlBool>`(${column} is not null and ${column} ${sql.raw(condition.op)} ${value})`;
      }
      case 'in': {
        const field = resolvePath(object, condition.path);
        const column = sql.raw(field.sql);
        const values = condition.values.filter((v) => v.kind !== 'null').map((v) => storedValue(field, v));
        const hasNull = values.length < condition.values.length;
        const list = values.length > 0 ? sql`${column} in (${sql.join(values)})` : sql`1 = 0`;
        if (condition.negated) {
          const notIn =
            values.length > 0
              ? sql`(${column} is null or ${column} not in (${sql.join(values)}))`
              : sql`1 = 1`;
          return hasNull ? sql<SqlBool>`(${column} is not null and ${notIn})` : sql<SqlBool>`${notIn}`;
        }
        return hasNull
          ? sql<SqlBool>`(${column} is null or (${column} is not null and ${list}))`
          : sql<SqlBool>`(${column} is not null and ${list})`;
      }
    }
  }

  async function createRecord(object: FakeObject, input: Row): Promise<string> {
    if (!object.embedded)
      throw new FakeError(400, 'INVALID_TYPE', `Cannot create ${object.name} records through this API`);
    const values = await writableValues(object, input);
    if (object.name === 'Account' && values.owner === undefined) values.owner = await runningUserEmail();
    try {
      const created = await embedded.create(object.embedded, values);
      return String(created.id);
    } catch (error) {
      throw fromEmbedded(object, error);
    }
  }

  async function updateRecord(
    object: FakeObject,
    id: string,
    input: Row,
    headers: IncomingMessage['headers'],
  ): Promise<void> {
    if (!object.embedded)
      throw new FakeError(400, 'INVALID_TYPE', `Cannot update ${object.name} records through this API`);
    const current = await db
      .selectFrom(object.table)
      .select('updated_at')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!current) throw new FakeError(404, 'NOT_FOUND', 'The requested resource does not exist');
    const since = headers['if-unmodified-since'];
    // HTTP dates have whole seconds: modified means modified in a later second than the one named.
    if (since !== undefined) {
      const limit = Date.parse(since);
      if (Number.isNaN(limit))
        throw new FakeError(400, 'INVALID_HEADER_TYPE', 'If-Unmodified-Since is not an HTTP date');
      if (Math.floor(Date.parse(String(current.updated_at)) / 1000) > Math.floor(limit / 1000)) {
        throw new FakeError(
          412,
          'PRECONDITION_FAILED',
          'The requested resource has been modified since the given date',
        );
      }
    }
    const values = await writableValues(object, input);
    try {
      await embedded.update(object.embedded, id, values, []);
    } catch (error) {
      throw fromEmbedded(object, error);
    }
  }

  async function deleteRecord(object: FakeObject, id: string): Promise<void> {
    if (!object.embedded)
      throw new FakeError(400, 'INVALID_TYPE', `Cannot delete ${object.name} records through this API`);
    if (!(await embedded.delete(object.embedded, id, []))) {
      throw new FakeError(404, 'NOT_FOUND', 'The requested resource does not exist');
    }
  }

  /** The body's fields as embedded values: each must exist and be createable/updateable. */
  async function writableValues(object: FakeObject, input: Row): Promise<CrmRecord> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new FakeError(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object');
    }
    const values: CrmRecord = {};
    for (const [name, value] of Object.entries(input)) {
      const field = object.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
      if (!field)
        throw new FakeError(
          400,
          'INVALID_FIELD',
          `No such column '${name}' on sobject of type ${object.name}`,
        );
      if (!field.writes) {
        throw new FakeError(
          400,
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${field.name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          [field.name],
        );
      }
      if (value !== null && typeof value !== 'string' && typeof value !== 'number') {
        throw new FakeError(400, 'JSON_PARSER_ERROR', `Cannot deserialize value of field ${field.name}`);
      }
      if (field.writes === 'owner') {
        const user = await db
          .selectFrom('fake_sf_users')
          .select('email')
          .where('id', '=', String(value))
          .executeTakeFirst();
        if (!user)
          throw new FakeError(400, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', [field.name]);
        values.owner = String(user.email);
      } else if (field.writes === 'what') {
        const ref = String(value);
        if (ref.startsWith('006')) values.opportunity_id = ref;
        else if (ref.startsWith('001')) values.account_id = ref;
        else
          throw new FakeError(400, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', [field.name]);
      } else {
        values[field.writes] = value as string | number | null;
      }
    }
    return values;
  }

  async function runningUserEmail(): Promise<string> {
    const user = await db
      .selectFrom('fake_sf_users')
      .select('email')
      .where('username', '=', options.username)
      .executeTakeFirstOrThrow();
    return String(user.email);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    queries,
    usage: () => ({ used, max }),
    setUsage(value) {
      used = value;
    },
    failNext(count, status, errorCode) {
      failures = { count, status, errorCode };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The users table of the fake org: the integration user and one user per Gatehouse user. */
async function prepareUsers(db: Kysely<Record<string, Row>>, options: SalesforceFakeOptions): Promise<void> {
  await sql`create table if not exists fake_sf_users (id text primary key, username text not null unique, email text not null, federation_id text, is_active integer not null, territory text, created_at text not null, updated_at text not null)`.execute(
    db,
  );
  const now = '2025-06-30T12:00:00.000Z';
  const users = [{ email: options.username }, ...options.users];
  for (const [i, user] of users.entries()) {
    await db
      .insertInto('fake_sf_users')
      .values({
        id: `0050S${String(i).padStart(10, '0')}`,
        username: i === 0 ? options.username : user.email,
        email: user.email,
        federation_id: user.federationId ?? null,
        is_active: 1,
        territory: user.territory ?? null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

function resolvePath(object: FakeObject, path: string): { name: string; type: SfFieldType; sql: string } {
  const lower = path.toLowerCase();
  const field = object.fields.find((f) => f.name.toLowerCase() === lower);
  if (field) return { name: field.name, type: field.type, sql: field.sql };
  const related = Object.entries(object.paths).find(([name]) => name.toLowerCase() === lower);
  if (related) return { name: related[0], type: related[1].type, sql: related[1].sql };
  throw new SoqlError(
    'INVALID_FIELD',
    `No such column '${path}' on entity '${object.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.`,
  );
}

function expandFields(object: FakeObject, select: readonly SoqlSelectItem[]): SoqlSelectItem[] {
  return select.flatMap((item) => {
    if (item.kind !== 'fields') return [item];
    const custom = (name: string) => name.endsWith('__c');
    return object.fields
      .filter((f) => item.which === 'ALL' || (item.which === 'CUSTOM' ? custom(f.name) : !custom(f.name)))
      .map((f) => ({ kind: 'field' as const, path: f.name }));
  });
}

/** A literal checked against the field's type, as stored in the fake's tables. */
function storedValue(field: { name: string; type: SfFieldType }, value: SoqlValue): string | number {
  const wrongType = () =>
    new SoqlError(
      'INVALID_QUERY_FILTER_OPERATOR',
      `value of filter criterion for field '${field.name}' must be of type ${field.type} and should${stringTypes.has(field.type) ? '' : ' not'} be enclosed in quotes`,
    );
  if (stringTypes.has(field.type)) {
    if (value.kind !== 'string') throw wrongType();
    if ((field.type === 'id' || field.type === 'reference') && !idPattern.test(value.value)) {
      throw new SoqlError('INVALID_QUERY_FILTER_OPERATOR', `invalid ID field: ${value.value}`);
    }
    return value.value;
  }
  if (numberTypes.has(field.type)) {
    if (value.kind !== 'number') throw wrongType();
    return value.value;
  }
  if (field.type === 'boolean') {
    if (value.kind !== 'boolean') throw wrongType();
    return value.value ? 1 : 0;
  }
  if (field.type === 'date') {
    if (value.kind !== 'date') throw wrongType();
    return value.value;
  }
  if (value.kind !== 'datetime') throw wrongType();
  return new Date(value.value).toISOString();
}

function outputValue(type: SfFieldType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'boolean') return value === 1 || value === true;
  if (type === 'datetime' && typeof value === 'string') return value.replace(/Z$/, '+0000');
  return value;
}

/** `Account.Owner.Email` → `{ Account: { attributes, Owner: { attributes, Email } } }`, as the REST API nests it. */
function setPath(record: Row, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = record;
  for (const part of parts.slice(0, -1)) {
    const child = (node[part] as Row | undefined) ?? {
      attributes: { type: part === 'Owner' ? 'User' : part },
    };
    node[part] = child;
    node = child;
  }
  node[parts[parts.length - 1] as string] = value;
}

function describeObject(object: FakeObject): Row {
  return {
    name: object.name,
    label: object.label,
    keyPrefix: object.keyPrefix,
    queryable: true,
    createable: object.embedded !== undefined,
    updateable: object.embedded !== undefined,
    deletable: object.embedded !== undefined,
    custom: false,
    fields: object.fields.map((f) => ({
      name: f.name,
      label: f.label,
      type: f.type,
      length: f.length ?? 0,
      nillable: f.nillable ?? true,
      createable: f.writes !== undefined,
      updateable: f.writes !== undefined,
      encrypted: f.encrypted ?? false,
      custom: f.name.endsWith('__c'),
      filterable: true,
      groupable: f.type !== 'textarea',
      aggregatable: f.type !== 'textarea',
      referenceTo: f.referenceTo ?? [],
      relationshipName: f.relationshipName ?? null,
      // FieldDefinition's data-classification attributes, which an org sets per field.
      complianceGroup: f.complianceGroup ?? null,
      securityClassification: f.securityClassification ?? null,
    })),
    urls: { describe: `/services/data/v${apiVersion}/sobjects/${object.name}/describe` },
  };
}

function fromEmbedded(object: FakeObject, error: unknown): FakeError {
  if (error instanceof GatehouseError && error.status < 500) {
    const field = typeof error.extensions?.field === 'string' ? error.extensions.field : undefined;
    const sfField = field && object.fields.find((f) => f.writes === field)?.name;
    const code =
      error.code === 'INVALID_INPUT' && /needs|required/.test(error.message)
        ? 'REQUIRED_FIELD_MISSING'
        : 'FIELD_INTEGRITY_EXCEPTION';
    return new FakeError(400, code, error.message, sfField ? [sfField] : []);
  }
  return new FakeError(
    500,
    'UNKNOWN_EXCEPTION',
    'An unexpected error occurred. Please include this ErrorId if you contact support.',
  );
}

function toSfError(error: unknown): SfError {
  if (error instanceof FakeError)
    return {
      status: error.status,
      errorCode: error.errorCode,
      message: error.message,
      ...(error.fields ? { fields: error.fields } : {}),
    };
  if (error instanceof SoqlError) return { status: 400, errorCode: error.errorCode, message: error.message };
  if (error instanceof SyntaxError)
    return { status: 400, errorCode: 'JSON_PARSER_ERROR', message: 'The request body is not valid JSON' };
  return { status: 500, errorCode: 'UNKNOWN_EXCEPTION', message: 'An unexpected error occurred.' };
}

function parseJson(body: string): Row {
  return JSON.parse(body) as Row;
}

function send(response: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' }).end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > 1_048_576) throw new FakeError(413, 'REQUEST_ENTITY_TOO_LARGE', 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
