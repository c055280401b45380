import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import type { CrmConnector, CrmObject, CrmRecord } from '../crm/index.js';
import { AccessDenied, GatehouseError, InputError, NotFound, PreconditionError } from '../errors/index.js';
import type { Principal, RowCondition } from '../policy/index.js';
import { consentCondition, consentObject } from './consent.js';
import { recordFields, scopesUsed } from './scopes.js';
import { consentWhere, etagOf, versionField } from './stages.js';

/**
 * The write stages (DESIGN.md: "Writes take the same path, with an allow-list of writable fields and a
 * DLP scan of what comes in"). A write scope's fieldset is the whole list of fields a caller may send;
 * everything else the gateway sets itself (author, territory) or the connector derives (owner, account).
 */

/** Who wrote a note: set from the token on create; only the author may change or delete it. */
const authorField = 'author';

/** body: the JSON object of a POST or PATCH, or 415 / 422. Other media types are refused, not guessed at. */
export function jsonBody(request: FastifyRequest): Record<string, unknown> {
  const type = String(request.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase();
  if (type !== 'application/json') {
    throw new GatehouseError('UNSUPPORTED_MEDIA_TYPE', 'send the record as application/json');
  }
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InputError('the body must be a JSON object of field values');
  }
  return body as Record<string, unknown>;
}

export interface WritePlan {
  object: CrmObject;
  /** The caller's values, every one of them in an allow-listed field. */
  values: CrmRecord;
  /** Where the record must lie: the caller's row filter, consent, and authorship for notes. */
  where: RowCondition[];
  scopes: readonly string[];
}

/**
 * authorize + shape for a write: the write scopes must open every field sent. A field outside them (id,
 * owner, territory, author, an unknown name) is a 422 naming the fields, never a silent drop: a caller
 * who believes it set `owner` must learn that it did not. Values are checked by the connector.
 */
export function planWrite(
  config: Config,
  principal: Principal,
  object: CrmObject,
  body: Record<string, unknown>,
  mode: 'create' | 'update',
  rows: (fields: readonly string[]) => readonly RowCondition[],
): WritePlan {
  const granted = recordFields(config, principal, object, 'write');
  if (granted.fields.size === 0) {
    throw new AccessDenied('SCOPE_MISSING', `no granted scope allows writing ${object} records`);
  }
  const names = Object.keys(body);
  const outside = names.filter((name) => !granted.fields.has(name));
  if (outside.length > 0) {
    const shown = outside.slice(0, 16).map(safeName);
    throw new InputError(`fields that may not be written with the granted scopes: ${shown.join(', ')}`, {
      fields: shown,
    });
  }
  if (names.length === 0) throw new InputError('the body names no field to write');
  const values: CrmRecord = {};
  for (const name of names) values[name] = scalar(name, body[name]);
  // authorize: Cedar on writing these fields, answered as the row filter the write must meet.
  const where = [...rows(names), ...consentWhere(config, principal, object)];
  if (mode === 'update' && isAuthored(object)) {
    where.push({ field: authorField, op: 'eq', value: principal.email });
  }
  return { object, values, where, scopes: scopesUsed(config, granted.scopes, names) };
}

/** A field name from the client, safe to echo: names only, and only if they look like one. */
function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : '(invalid name)';
}

/** JSON scalars only; an object or array where a field value is due is bad input, named by field. */
function scalar(field: string, value: unknown): string | number | null {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  throw new InputError(`${field} must be a string, a number or null`, { field });
}

/** Notes carry their author; only the author may change or delete one. */
function isAuthored(object: CrmObject): boolean {
  return object === 'note';
}

/**
 * What the gateway adds to a create: the author (who wrote it, from the token, never from the body) and
 * the caller's territory from its row filter, which the connector checks against the parent account:
 * a note can only hang off a record the caller can see.
 */
export function createValues(principal: Principal, plan: WritePlan): CrmRecord {
  const values: CrmRecord = { ...plan.values };
  if (plan.object === 'note') values[authorField] = principal.email;
  for (const condition of plan.where) {
    if ((condition.field === 'territory' || condition.field === 'owner') && condition.op === 'eq') {
      values[condition.field] = condition.value;
    }
  }
  return values;
}

/**
 * A note about a contact is processing of that contact's data for the app's purpose: in exclude mode,
 * the contact must have consented, or it is reported exactly as a contact the caller cannot see.
 */
export async function requireConsentedContact(
  crm: CrmConnector,
  config: Config,
  principal: Principal,
  values: CrmRecord,
  contactRows: () => readonly RowCondition[],
): Promise<void> {
  const contactId = values.contact_id;
  if (typeof contactId !== 'string' || config.gateway.consent.mode !== 'exclude') return;
  const where = [...contactRows(), consentCondition(config, principal)];
  const contact = await crm.get(consentObject, contactId, [], where);
  if (!contact)
    throw new InputError('contact_id does not name a record you can see', { field: 'contact_id' });
}

/** The strong entity tags of an If-Match header; 428 when there is none to compare. */
export function requireIfMatch(header: string | string[] | undefined): string[] {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text || text.trim() === '') {
    throw new PreconditionError(
      'PRECONDITION_REQUIRED',
      'send If-Match with the ETag of the record you read, so that a change made since is not overwritten',
    );
  }
  // `*` would match any version and defeat the check; weak tags never match for If-Match (RFC 9110 13.1.1).
  const tags = text
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => /^"[\x21\x23-\x7e]*"$/.test(tag));
  if (tags.length === 0) {
    throw new PreconditionError(
      'PRECONDITION_REQUIRED',
      'If-Match must carry the ETag of the record you read',
    );
  }
  return tags;
}

/**
 * The current version of a record the caller may write, checked against If-Match: 404 when it is missing
 * or hidden, 412 when it changed since the caller read it. Answers the row filter pinned to that version,
 * so the write itself fails if another lands between this check and it.
 */
export async function checkVersion(
  crm: CrmConnector,
  plan: Pick<WritePlan, 'object' | 'where'>,
  id: string,
  ifMatch: readonly string[],
): Promise<RowCondition[]> {
  const current = await crm.get(plan.object, id, [versionField], plan.where);
  if (!current) throw new NotFound();
  if (!ifMatch.includes(etagOf(current))) throw stale();
  return [...plan.where, { field: versionField, op: 'eq', value: String(current[versionField]) }];
}

export function stale(): PreconditionError {
  return new PreconditionError('PRECONDITION_FAILED', 'the record changed since you read it; read it again');
}

/** The ETag of the version a write left, read back under the caller's row filter. */
export async function currentEtag(
  crm: CrmConnector,
  object: CrmObject,
  id: string,
  where: readonly RowCondition[],
): Promise<string | undefined> {
  const record = await crm.get(object, id, [versionField], where);
  return record ? etagOf(record) : undefined;
}

/**
 * What a write answers: the record as stored, showing the fields the caller wrote and, of the fields the
 * gateway or connector set, those the caller may read. Territory and owner stay hidden from a caller
 * whose scopes do not open them.
 */
export function writeAnswer(
  config: Config,
  principal: Principal,
  object: CrmObject,
  written: readonly string[],
  stored: CrmRecord,
): { record: CrmRecord; fields: string[] } {
  const readable = recordFields(config, principal, object, 'read').fields;
  const fields = Object.keys(stored).filter(
    (field) => field !== 'id' && (written.includes(field) || readable.has(field)),
  );
  const record: CrmRecord = { id: stored.id ?? null };
  for (const field of fields) record[field] = stored[field] ?? null;
  return { record, fields };
}

/** DELETE: only objects configured as deletable, and a note only by its author. */
export function planDelete(
  config: Config,
  principal: Principal,
  object: CrmObject,
  rows: readonly RowCondition[],
): WritePlan {
  if (!config.gateway.deletable.includes(object)) {
    throw new AccessDenied('POLICY_DENIED', `${object} records cannot be deleted through the gateway`, {
      rule: 'deletable-objects',
    });
  }
  const granted = recordFields(config, principal, object, 'write');
  if (granted.fields.size === 0) {
    throw new AccessDenied('SCOPE_MISSING', `no granted scope allows writing ${object} records`);
  }
  const where = [...rows, ...consentWhere(config, principal, object)];
  if (isAuthored(object)) where.push({ field: authorField, op: 'eq', value: principal.email });
  return { object, values: {}, where, scopes: granted.scopes };
}
