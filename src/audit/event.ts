/** Audit events: their shape, their RFC 8785 canonical form and their leaf hash. */
import canonicalize from 'canonicalize';
import { hashLeaf } from './merkle.js';

export interface AuditEvent {
  timestamp: string;
  actor_id: string;
  actor_role: string;
  app_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  scope: string;
  request_id: string;
  trace_id: string;
  outcome: 'allow' | 'deny' | 'error';
  reason: string;
  policy_version?: string;
  /** The CRM fields a request read or wrote, names only, sorted and comma-separated. */
  fields?: string;
  /** How many records a request returned or changed. */
  record_count?: number;
  /** The caller's network (IPv4 /24, IPv6 /48), never the full address. */
  client_network?: string;
  /** A cross-border transfer the app's plan allows, as `<record regions>><app region>` (`EU>US`). */
  transfer?: string;
}

const requiredFields = [
  'timestamp',
  'actor_id',
  'actor_role',
  'app_id',
  'action',
  'resource_type',
  'resource_id',
  'scope',
  'request_id',
  'trace_id',
  'outcome',
  'reason',
] as const satisfies ReadonlyArray<keyof AuditEvent>;

const outcomes: ReadonlySet<string> = new Set(['allow', 'deny', 'error']);
const optionalStrings = [
  'policy_version',
  'fields',
  'client_network',
  'transfer',
] as const satisfies ReadonlyArray<keyof AuditEvent>;
const knownFields: ReadonlySet<string> = new Set<string>([
  ...requiredFields,
  ...optionalStrings,
  'record_count',
]);

/** RFC 8785 (JCS) canonical JSON of a JSON value. TypeError for values JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (cause) {
    throw new TypeError('value has no canonical JSON form (NaN, Infinity, a lone surrogate or a cycle)', {
      cause,
    });
  }
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

/** Hex SHA-256(0x00 ‖ UTF-8 bytes of the canonical JSON). */
export function leafHashHex(canonical: string): string {
  return hashLeaf(Buffer.from(canonical, 'utf8')).toString('hex');
}

/** True when `value` is exactly an AuditEvent: the known fields, all strings, nothing else. */
export function isAuditEvent(value: unknown): value is AuditEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!knownFields.has(key)) return false;
  }
  for (const field of requiredFields) {
    if (typeof record[field] !== 'string') return false;
  }
  if (!outcomes.has(record.outcome as string)) return false;
  for (const field of optionalStrings) {
    if (record[field] !== undefined && typeof record[field] !== 'string') return false;
  }
  const count = record.record_count;
  return count === undefined || (Number.isSafeInteger(count) && (count as number) >= 0);
}

/** The known fields in RFC 8785 order: by UTF-16 code units, as Array#sort compares strings. */
const canonicalOrder = [...knownFields].sort();

/** A lone surrogate: in `u` mode a well-formed pair is one code point, which this does not match. */
const loneSurrogate = /\p{Surrogate}/u;

/**
 * The canonical bytes an appended event is stored and hashed as. Only the known fields are taken, so
 * nothing else a caller's object happens to carry can reach the log. TypeError for a malformed event
 * (a programming mistake of the caller).
 *
 * This runs for every request, so it does not walk the value as canonicalJson does: the fields are
 * picked in canonical order, and for an object of strings (none with a lone surrogate) and a count,
 * RFC 8785 is exactly JSON.stringify of it, byte for byte.
 */
export function canonicalEvent(event: AuditEvent): string {
  const picked: Record<string, unknown> = {};
  for (const field of canonicalOrder) {
    const value = event[field as keyof AuditEvent];
    if (value !== undefined) picked[field] = value;
  }
  if (!isAuditEvent(picked)) {
    throw new TypeError(
      'audit event: every field must be a string (record_count a count) and outcome one of allow, deny, error',
    );
  }
  for (const value of Object.values(picked)) {
    if (typeof value === 'string' && loneSurrogate.test(value)) {
      throw new TypeError('value has no canonical JSON form (NaN, Infinity, a lone surrogate or a cycle)');
    }
  }
  return JSON.stringify(picked);
}

/**
 * What became of an event whose body left the log (retention purge, a data subject's erasure): its leaf
 * hash stays in the tree, so the log still verifies and the event stays provable by that hash.
 */
export interface Tombstone {
  state: 'pruned' | 'pseudonymised';
  /** The purge run or data-subject request that rewrote the body. */
  run: string;
  at: string;
}

/** A rewritten body as stored: what is left of the event (a pruned stub, or pseudonymised) and why. */
export interface StoredTombstone {
  event: AuditEvent;
  tombstone: Tombstone;
}

const tombstoneStates: ReadonlySet<string> = new Set(['pruned', 'pseudonymised']);

/** The canonical text a tombstone is stored as; it begins `{"event":`, which no event's text does. */
export function tombstoneText(stored: StoredTombstone): string {
  canonicalEvent(stored.event);
  return canonicalJson({ event: stored.event, tombstone: stored.tombstone });
}

/** The stored tombstone `text` is, or undefined when it is none (an event, or damage). */
export function parseTombstone(text: string): StoredTombstone | undefined {
  if (!text.startsWith('{"event":')) return undefined;
  let value: unknown;
  try {
    // The store is outside the trust boundary: only the exact canonical shape counts as a tombstone.
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { event, tombstone, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || !isAuditEvent(event)) return undefined;
  if (typeof tombstone !== 'object' || tombstone === null) return undefined;
  const t = tombstone as Record<string, unknown>;
  if (Object.keys(t).length !== 3 || !tombstoneStates.has(t.state as string)) return undefined;
  if (typeof t.run !== 'string' || typeof t.at !== 'string') return undefined;
  const stored = { event, tombstone: t as unknown as Tombstone };
  return canonicalJson(stored) === text ? stored : undefined;
}

/** The stub a pruned event leaves: when and by which app, nothing about whom or what. */
export function prunedStub(event: AuditEvent): AuditEvent {
  return {
    timestamp: event.timestamp,
    actor_id: 'pruned',
    actor_role: 'pruned',
    app_id: event.app_id,
    action: 'pruned',
    resource_type: event.resource_type,
    resource_id: 'pruned',
    scope: '',
    request_id: event.request_id,
    trace_id: '',
    outcome: event.outcome,
    reason: 'body pruned past its retention; the leaf hash is kept',
  };
}
