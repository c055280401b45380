/**
 * One error hierarchy for Gatehouse. Every error a user can see is a GatehouseError with a stable
 * `code`; the registry below is the single mapping from code to HTTP status, problem title and what to
 * do, used by the server (RFC 7807 problem+json, and the pages at /problems its `type` points to) and
 * the CLI (one line, non-zero exit). The README's error table repeats it (pinned by index.test.ts).
 *
 * Messages are generic and safe to show: never a token, a key or a record value. Details that help an
 * operator go in `cause`, which is logged (redacted) and never sent.
 */

interface ErrorSpec {
  readonly status: number;
  readonly title: string;
  /** What the caller (or the operator) does about it; inline `code` in backticks, as in the README. */
  readonly remedy: string;
}

export const errorRegistry = {
  CONFIG_INVALID: {
    status: 500,
    title: 'Invalid configuration',
    remedy: 'fix the setting the message names (`gatehouse config show` prints what is in force)',
  },
  BAD_REQUEST: {
    status: 400,
    title: 'Bad request',
    remedy:
      'the request could not be read (bad JSON, bad encoding, two Authorization headers); send it well-formed',
  },
  INVALID_INPUT: {
    status: 422,
    title: 'Invalid input',
    remedy: 'a parameter or field is invalid; the detail names which, never its value',
  },
  DLP_REFUSED: {
    status: 422,
    title: 'Refused by data loss prevention',
    remedy: 'the text holds data that may not be stored (kinds named); remove it and send again',
  },
  PRECONDITION_FAILED: {
    status: 412,
    title: 'The record changed since it was read',
    remedy: 'the record changed since you read it: read it again and retry with the new ETag',
  },
  PRECONDITION_REQUIRED: {
    status: 428,
    title: 'If-Match required',
    remedy: 'send `If-Match` with the ETag of the record you read',
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    title: 'Idempotency key used for another request',
    remedy: 'an `Idempotency-Key` is for one request only; use a new key for a new request',
  },
  IDEMPOTENCY_KEY_IN_USE: {
    status: 409,
    title: 'A write with this idempotency key did not finish',
    remedy: 'the first write with this key has no outcome yet; retry after Retry-After',
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    title: 'Request body too large',
    remedy: 'send a smaller body (the limit is in the detail)',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported media type',
    remedy: 'send `Content-Type: application/json`',
  },
  ROUTE_NOT_FOUND: {
    status: 404,
    title: 'No such endpoint',
    remedy: 'check the path against `GET /openapi.json`',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method not allowed',
    remedy: 'the path exists with other methods; see `GET /openapi.json`',
  },
  TOKEN_MISSING: {
    status: 401,
    title: 'Missing access token',
    remedy: 'send `Authorization: Bearer <token>` (or `DPoP <token>` with a proof)',
  },
  TOKEN_INVALID: {
    status: 401,
    title: 'Invalid access token',
    remedy: 'get a new token from the broker; this one is not one of ours or is malformed',
  },
  TOKEN_EXPIRED: { status: 401, title: 'Expired access token', remedy: 'refresh the token or sign in again' },
  TOKEN_REVOKED: {
    status: 401,
    title: 'Revoked access token',
    remedy: 'sign in again; if an `incident` is named, ask your Gatehouse admins about it',
  },
  TOKEN_DPOP_INVALID: {
    status: 401,
    title: 'Missing or invalid DPoP proof',
    remedy: 'send a fresh DPoP proof for this method and URL, signed by the bound key',
  },
  OAUTH_INVALID_REQUEST: {
    status: 400,
    title: 'invalid_request',
    remedy: 'a parameter of the OAuth request is missing or malformed (RFC 6749 §5.2)',
  },
  OAUTH_INVALID_GRANT: {
    status: 400,
    title: 'invalid_grant',
    remedy: 'the code, refresh token or ID token is not valid for this client; start the sign-in again',
  },
  OAUTH_INVALID_SCOPE: {
    status: 400,
    title: 'invalid_scope',
    remedy: 'ask only for scopes the app is approved for and your role allows',
  },
  OAUTH_INVALID_CLIENT: {
    status: 401,
    title: 'invalid_client',
    remedy: 'check the client id and its authentication (private_key_jwt)',
  },
  OAUTH_UNSUPPORTED_GRANT_TYPE: {
    status: 400,
    title: 'unsupported_grant_type',
    remedy: 'use token exchange, authorization_code or refresh_token',
  },
  OAUTH_INVALID_DPOP_PROOF: {
    status: 400,
    title: 'invalid_dpop_proof',
    remedy: 'send a fresh, well-formed DPoP proof for `/oauth/token`',
  },
  OAUTH_ACCESS_DENIED: {
    status: 403,
    title: 'access_denied',
    remedy: 'the user or policy refused; nothing to retry without their consent',
  },
  OAUTH_INVALID_AUTHORIZATION_DETAILS: {
    status: 400,
    title: 'invalid_authorization_details',
    remedy: 'send `authorization_details` of a type and shape the broker knows',
  },
  ELEVATION_NOT_FOUND: {
    status: 404,
    title: 'No such elevation request',
    remedy: 'check the elevation request id',
  },
  ELEVATION_CONFLICT: {
    status: 409,
    title: 'The elevation request is not in a state that allows this',
    remedy: 'the request was decided already; ask for a new elevation',
  },
  ELEVATION_SELF_REVIEW: {
    status: 403,
    title: 'A requester cannot review their own elevation',
    remedy: 'another reviewer must decide your own request',
  },
  ELEVATION_NOT_REVIEWER: {
    status: 403,
    title: 'The reviewer does not hold the review duty for this data',
    remedy: 'a reviewer whose role reviews these scopes must decide',
  },
  POLICY_DENIED: {
    status: 403,
    title: 'Denied by policy',
    remedy: 'the Cedar library refused; the detail names the rule and why',
  },
  POLICY_INVALID: {
    status: 422,
    title: 'Invalid policy library',
    remedy: 'fix the policy file the detail names; nothing was published',
  },
  POLICY_TESTS_FAILED: {
    status: 422,
    title: 'The policy library fails its tests',
    remedy: 'fix the library or its tests (`gatehouse policy test`); nothing was published',
  },
  FIELD_NOT_ALLOWED: {
    status: 403,
    title: 'Field outside granted scopes',
    remedy: 'ask only for fields of your granted scopes, or request the scope',
  },
  SCOPE_MISSING: {
    status: 403,
    title: 'No granted scope covers this request',
    remedy: 'the token holds no scope for this object or action; request it',
  },
  NOT_FOUND: {
    status: 404,
    title: 'Not found',
    remedy: 'no such record, or it is not visible to you (the two look the same on purpose)',
  },
  RATE_LIMITED: { status: 429, title: 'Rate limit reached', remedy: 'wait for the time in Retry-After' },
  QUOTA_EXCEEDED: {
    status: 429,
    title: 'Daily quota used up',
    remedy: "the app's daily quota is used up; wait for the next day or ask for a higher quota",
  },
  BULK_EXPORT_BLOCKED: {
    status: 403,
    title: 'Refused by the bulk-export guard',
    remedy: 'read fewer distinct records, or ask an admin for an export exception',
  },
  CIRCUIT_OPEN: {
    status: 503,
    title: 'CRM connector unavailable',
    remedy: 'the CRM is failing; retry after Retry-After',
  },
  LIMITS_UNAVAILABLE: {
    status: 503,
    title: 'Rate limits unavailable',
    remedy: 'the limit store (Redis) cannot answer; retry shortly; operators: check Redis',
  },
  AUDIT_UNAVAILABLE: {
    status: 503,
    title: 'Audit trail unavailable',
    remedy:
      'the audit trail cannot be written, so nothing is served; retry shortly; operators: check the store',
  },
  DEPENDENCY_UNAVAILABLE: {
    status: 503,
    title: 'Dependency unavailable',
    remedy: 'a service Gatehouse needs is down (named in the detail); retry shortly',
  },
  AUDIT_INTEGRITY: {
    status: 500,
    title: 'Audit log integrity failure',
    remedy: 'operators: the audit log does not verify; run `gatehouse audit verify`',
  },
  DEMO_ONLY: {
    status: 403,
    title: 'Only available in demo mode',
    remedy: 'this exists only in demo mode (`serve --demo`)',
  },
  USER_UNKNOWN: {
    status: 404,
    title: 'Unknown user',
    remedy: 'check the user name; the IdP does not know it',
  },
  BUNDLE_INVALID: {
    status: 422,
    title: 'Unusable app bundle',
    remedy: 'the bundle cannot be read (format, limits, damage); rebuild it as a zip, tar or tgz',
  },
  INCIDENT_NOT_FOUND: {
    status: 404,
    title: 'No such incident',
    remedy: 'check the incident id (`gatehouse incident list`)',
  },
  INCIDENT_CONFLICT: {
    status: 409,
    title: 'The incident is not in a state that allows this',
    remedy: 'the incident is closed, or this step was done already',
  },
  APP_EXISTS: { status: 409, title: 'An app of this name exists', remedy: 'choose another app id' },
  APP_STATE: {
    status: 409,
    title: 'The app is not in a state that allows this',
    remedy: "the app's state does not allow this step (`gatehouse app show`)",
  },
  APP_NOT_OWNER: {
    status: 403,
    title: 'Only the owner or an admin may do this',
    remedy: "ask the app's owner or an admin",
  },
  SEPARATION_OF_DUTIES: {
    status: 403,
    title: 'Refused by separation of duties',
    remedy: 'another person must do this (you requested or built it)',
  },
  BUNDLE_NOT_APPROVED: {
    status: 409,
    title: 'The bundle is not the approved one',
    remedy: 'deploy the bundle that was approved, or have this one reviewed',
  },
  INTERNAL: {
    status: 500,
    title: 'Internal error',
    remedy: 'a bug: report the `instance` (request id), which the server log holds',
  },
  URI_TOO_LONG: {
    status: 414,
    title: 'Request URL too long',
    remedy: 'shorten the URL (fewer fields or a shorter filter)',
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request headers too large',
    remedy: 'send fewer or smaller headers',
  },
  REQUEST_TIMEOUT: {
    status: 408,
    title: 'Request not received in time',
    remedy: 'the request did not arrive in time; send it again',
  },
  OVERLOADED: {
    status: 503,
    title: 'Server busy',
    remedy: 'the server is shedding load; retry after Retry-After',
  },
  DATABASE_BUSY: {
    status: 503,
    title: 'Database busy',
    remedy: 'another process holds the database lock; retry after Retry-After',
  },
  AUDIT_LOG_DAMAGED: {
    status: 503,
    title: 'Audit log damaged',
    remedy: 'operators: the stored log does not match its checkpoints; see Failure modes',
  },
  POLICY_UNAVAILABLE: {
    status: 503,
    title: 'Policy library unavailable',
    remedy: 'operators: the published policy cannot be loaded; see Failure modes',
  },
  DESTINATION_REFUSED: {
    status: 422,
    title: 'Outbound destination refused',
    remedy:
      'the hook or webhook address is private, loopback or link-local (or redirects); use a public address or allow it in `net.allowPrivateDestinations`',
  },
  SCRUB_LEAK: {
    status: 500,
    title: 'Original values survived the scrub',
    remedy:
      'the scrubbed copy still holds original values (how many is in the detail): do not use it; report the input that caused it',
  },
  STORE_DOCUMENT_TOO_LARGE: {
    status: 413,
    title: 'App store document too large',
    remedy: 'store a smaller document (the limit is in the detail)',
  },
  STORE_LIMIT_REACHED: {
    status: 409,
    title: 'App store document limit reached',
    remedy: 'delete documents this app keeps for the user, or ask for a higher `appStore` limit',
  },
  DSR_NOT_FOUND: {
    status: 404,
    title: 'No such data-subject request',
    remedy: 'check the request id (`gatehouse dsr list`)',
  },
  DSR_SUBJECT_UNKNOWN: {
    status: 422,
    title: 'The CRM holds no such data subject',
    remedy: 'check the contact id or e-mail of the subject',
  },
  REPORT_INVALID: {
    status: 422,
    title: 'The compliance report does not verify',
    remedy:
      'the report was changed or is incomplete; get it again from `gatehouse compliance purge-report` or `dsr show --report`',
  },
  WITNESS_REFUSED: {
    status: 502,
    title: 'A log witness did not cosign',
    remedy: 'operators: check the witness named in the detail (reachable, and its last cosigned size)',
  },
  CRM_UNSUPPORTED: {
    status: 422,
    title: 'Not supported by the connected CRM',
    remedy: 'the connected CRM cannot answer this (e.g. a month bucket on Salesforce); ask without it',
  },
  KEY_SERVICE_UNAVAILABLE: {
    status: 503,
    title: 'Key service unavailable',
    remedy:
      'the key service (Vault, KMS, master key) cannot answer; retry after Retry-After; operators: see the detail and `/readyz` (`keys`)',
  },
  FIELD_ENCRYPTED: {
    status: 422,
    title: 'The field is encrypted: equality only',
    remedy:
      'the field is encrypted at rest (Privacy): filter it with `eq`, `ne` or `in` only; do not compare, group or take min/max of it',
  },
  CONTROL_STALE: {
    status: 503,
    title: 'Control state out of date',
    remedy:
      'this node could not confirm its policy, playbooks and keys with the store within `control.maxStalenessMs`; retry on another node, fix the database connection',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorRegistry;

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  /** Extra members for the problem document; must never carry secrets or record values. */
  readonly extensions: Readonly<Record<string, unknown>>;
  /** Seconds after which a retry may succeed; the HTTP layer sends it as Retry-After. */
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.extensions = options.extensions ?? {};
  }

  get status(): number {
    return errorRegistry[this.code].status;
  }
}

export class ConfigError extends GatehouseError {
  declare readonly code: 'CONFIG_INVALID';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('CONFIG_INVALID', message, options);
  }
}

export class InputError extends GatehouseError {
  declare readonly code: 'INVALID_INPUT';
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super('INVALID_INPUT', message, { extensions });
  }
}

export type TokenErrorCode =
  'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED' | 'TOKEN_DPOP_INVALID';

/**
 * Why a token was refused, as data: the code a client sees is derived from it, the log and the
 * request line say the reason (a suspended app is not a containment, though both are TOKEN_REVOKED).
 */
export const tokenRefusals = {
  missing: 'TOKEN_MISSING',
  malformed: 'TOKEN_INVALID',
  invalid: 'TOKEN_INVALID',
  no_role: 'TOKEN_INVALID',
  expired: 'TOKEN_EXPIRED',
  revoked: 'TOKEN_REVOKED',
  key_revoked: 'TOKEN_REVOKED',
  contained: 'TOKEN_REVOKED',
  app_not_approved: 'TOKEN_REVOKED',
  dpop_invalid: 'TOKEN_DPOP_INVALID',
} as const satisfies Record<string, TokenErrorCode>;
export type TokenRefusalReason = keyof typeof tokenRefusals;

export class TokenError extends GatehouseError {
  declare readonly code: TokenErrorCode;
  readonly reason: TokenRefusalReason;

  constructor(
    reason: TokenRefusalReason,
    message: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(tokenRefusals[reason], message, options);
    this.reason = reason;
  }
}

export type OAuthErrorCode =
  | 'OAUTH_INVALID_REQUEST'
  | 'OAUTH_INVALID_GRANT'
  | 'OAUTH_INVALID_SCOPE'
  | 'OAUTH_INVALID_CLIENT'
  | 'OAUTH_UNSUPPORTED_GRANT_TYPE'
  | 'OAUTH_INVALID_DPOP_PROOF'
  | 'OAUTH_ACCESS_DENIED'
  | 'OAUTH_INVALID_AUTHORIZATION_DETAILS';
/** Errors of the OAuth endpoints; they answer in the RFC 6749 §5.2 shape as well as problem+json. */
export class OAuthError extends GatehouseError {
  declare readonly code: OAuthErrorCode;
  constructor(code: OAuthErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }

  get oauthError(): string {
    return errorRegistry[this.code].title;
  }
}

export type AccessDeniedCode = 'POLICY_DENIED' | 'FIELD_NOT_ALLOWED' | 'SCOPE_MISSING';
export class AccessDenied extends GatehouseError {
  declare readonly code: AccessDeniedCode;
  constructor(code: AccessDeniedCode, message: string, extensions: Record<string, unknown> = {}) {
    super(code, message, { extensions });
  }
}

export type ElevationErrorCode =
  'ELEVATION_NOT_FOUND' | 'ELEVATION_CONFLICT' | 'ELEVATION_SELF_REVIEW' | 'ELEVATION_NOT_REVIEWER';
/**
 * Just-in-time elevation requests: unknown, decided already, reviewed by their own requester, or by
 * someone without the review duty for the data.
 */
export class ElevationError extends GatehouseError {
  declare readonly code: ElevationErrorCode;
  constructor(code: ElevationErrorCode, message: string) {
    super(code, message);
  }
}

export type CatalogErrorCode =
  'APP_EXISTS' | 'APP_STATE' | 'APP_NOT_OWNER' | 'SEPARATION_OF_DUTIES' | 'BUNDLE_NOT_APPROVED';
/** The app lifecycle: a taken name, a step the app's state does not allow, someone else's app, SoD. */
export class CatalogError extends GatehouseError {
  declare readonly code: CatalogErrorCode;
  constructor(code: CatalogErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(code, message, { extensions });
  }
}

export class NotFound extends GatehouseError {
  declare readonly code: 'NOT_FOUND';
  constructor(message = 'no such record, or it is not visible to this caller') {
    super('NOT_FOUND', message);
  }
}

/** 412 / 428: a write without the ETag of the version it was based on, or with a stale one. */
export type PreconditionCode = 'PRECONDITION_FAILED' | 'PRECONDITION_REQUIRED';
export class PreconditionError extends GatehouseError {
  declare readonly code: PreconditionCode;
  constructor(code: PreconditionCode, message: string) {
    super(code, message);
  }
}

/** 422 / 409: an Idempotency-Key sent with another request, or whose first write has not finished. */
export type IdempotencyCode = 'IDEMPOTENCY_KEY_REUSED' | 'IDEMPOTENCY_KEY_IN_USE';
export class IdempotencyError extends GatehouseError {
  declare readonly code: IdempotencyCode;
  constructor(code: IdempotencyCode, message: string) {
    super(code, message);
  }
}

/** 422: incoming text holds something it must not carry. Names the detector kinds, never the values. */
export class DlpRefused extends GatehouseError {
  declare readonly code: 'DLP_REFUSED';
  constructor(field: string, kinds: readonly string[]) {
    super('DLP_REFUSED', `${field} holds data that may not be stored here: ${kinds.join(', ')}`, {
      extensions: { field, kinds: [...kinds] },
    });
  }
}

/** 429: a rate limit or the daily quota refused the request; Retry-After says when to come back. */
export class RateLimited extends GatehouseError {
  declare readonly code: 'RATE_LIMITED' | 'QUOTA_EXCEEDED';
  override readonly retryAfterSeconds: number;

  /** `incident`: the incident whose containment throttle refused, named so the caller can ask about it. */
  constructor(
    code: 'RATE_LIMITED' | 'QUOTA_EXCEEDED',
    limit: string,
    retryAfterSeconds: number,
    incident?: string,
  ) {
    super(
      code,
      code === 'QUOTA_EXCEEDED'
        ? "this app's daily request quota is used up"
        : incident !== undefined
          ? `requests are throttled while incident ${incident} is investigated; retry after the time in Retry-After or ask your Gatehouse admins about the incident`
          : `the ${limit} rate limit was reached; retry after the time in Retry-After`,
      { extensions: { limit, ...(incident !== undefined && { incident }) } },
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export type UnavailableCode =
  | 'AUDIT_UNAVAILABLE'
  | 'DEPENDENCY_UNAVAILABLE'
  | 'OVERLOADED'
  | 'DATABASE_BUSY'
  | 'AUDIT_LOG_DAMAGED'
  | 'POLICY_UNAVAILABLE'
  | 'CONTROL_STALE';
export class DependencyUnavailable extends GatehouseError {
  declare readonly code: UnavailableCode;
  constructor(code: UnavailableCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

export class AuditIntegrityError extends GatehouseError {
  declare readonly code: 'AUDIT_INTEGRITY';
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super('AUDIT_INTEGRITY', message, { extensions });
  }
}

/** An outbound call refused: a private or link-local address, a redirect, or an oversized answer. */
export class DestinationRefused extends GatehouseError {
  declare readonly code: 'DESTINATION_REFUSED';
  constructor(message: string) {
    super('DESTINATION_REFUSED', message);
  }
}

export type IncidentErrorCode = 'INCIDENT_NOT_FOUND' | 'INCIDENT_CONFLICT';
/** Incidents: unknown, or closed already (or restored already) for what was asked. */
export class IncidentError extends GatehouseError {
  declare readonly code: IncidentErrorCode;
  constructor(code: IncidentErrorCode, message: string) {
    super(code, message);
  }
}

/** A transparency-log witness refused or failed to cosign a checkpoint (src/audit/witnessing.ts). */
export class WitnessRefused extends GatehouseError {
  declare readonly code: 'WITNESS_REFUSED';
  constructor(witness: string, status: number, detail: string) {
    super('WITNESS_REFUSED', `witness ${witness} did not cosign (HTTP ${status}): ${detail}`, {
      extensions: { witness, witness_status: status },
    });
  }
}

/** A request the connected CRM cannot answer (an aggregate it has no query for): 422, an answer and not a failure that opens the breaker. */
export class CrmUnsupported extends GatehouseError {
  declare readonly code: 'CRM_UNSUPPORTED';
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super('CRM_UNSUPPORTED', message, { extensions });
  }
}

/**
 * 422: a range, an order or a group asked of a field encrypted at rest. The store holds only its
 * ciphertext and a keyed equality index, so nothing but `eq`, `ne` and `in` can be answered.
 */
export class FieldEncrypted extends GatehouseError {
  declare readonly code: 'FIELD_ENCRYPTED';
  constructor(field: string, use: string) {
    super(
      'FIELD_ENCRYPTED',
      `${field} is encrypted at rest: only eq, ne and in can be asked of it, not ${use}`,
      { extensions: { field } },
    );
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extension: string]: unknown;
}

/** The code as it appears in a problem `type` and the README's anchors: `POLICY_DENIED` → `policy-denied`. */
export function problemSlug(code: ErrorCode): string {
  return code.toLowerCase().replaceAll('_', '-');
}

/** The page documenting a code, served by Gatehouse itself at `<publicUrl>/problems/<slug>`. */
export function problemType(code: ErrorCode, publicUrl: string): string {
  return `${publicUrl.replace(/\/$/, '')}/problems/${problemSlug(code)}`;
}

/**
 * The RFC 7807 body for any thrown value; unknown errors become a generic 500 that leaks nothing.
 * `publicUrl` is the server's own URL, under which the `type` resolves to that code's documentation.
 */
export function toProblem(error: unknown, where: { publicUrl: string; instance?: string }): Problem {
  const known = isGatehouseError(error) ? error : undefined;
  const code: ErrorCode = known?.code ?? 'INTERNAL';
  const spec = errorRegistry[code];
  // OAuth clients read RFC 6749 §5.2 members; problem+json readers read the rest.
  const oauth =
    known instanceof OAuthError ? { error: known.oauthError, error_description: known.message } : undefined;
  return {
    ...(known?.extensions ?? {}),
    ...oauth,
    type: problemType(code, where.publicUrl),
    title: spec.title,
    status: spec.status,
    detail: known?.message ?? 'an unexpected error occurred; the request id identifies it in the server log',
    code,
    ...(where.instance ? { instance: where.instance } : {}),
  };
}

/** The one line the CLI prints for an error: what went wrong, never a stack trace. */
export function toCliLine(error: unknown): string {
  if (error instanceof GatehouseError) return `gatehouse: ${error.message} [${error.code}]`;
  if (error instanceof Error) return `gatehouse: ${error.message}`;
  return `gatehouse: ${String(error)}`;
}

export type ComplianceErrorCode =
  | 'STORE_DOCUMENT_TOO_LARGE'
  | 'STORE_LIMIT_REACHED'
  | 'DSR_NOT_FOUND'
  | 'DSR_SUBJECT_UNKNOWN'
  | 'REPORT_INVALID';
/** The compliance module: app store limits, data-subject requests, reports that do not verify. */
export class ComplianceError extends GatehouseError {
  declare readonly code: ComplianceErrorCode;
  constructor(code: ComplianceErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(code, message, { extensions });
  }
}

/**
 * 503: the key service (the local master key, Vault or KMS) could not wrap or unwrap a key, or read a
 * runtime secret, so nothing that needs it is served. Says which backend and why, never a key.
 */
export class KeyServiceUnavailable extends GatehouseError {
  declare readonly code: 'KEY_SERVICE_UNAVAILABLE';
  override readonly retryAfterSeconds: number;

  constructor(message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super('KEY_SERVICE_UNAVAILABLE', message, { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }
}

type SubclassError =
  | ConfigError
  | InputError
  | TokenError
  | OAuthError
  | AccessDenied
  | ElevationError
  | CatalogError
  | NotFound
  | PreconditionError
  | IdempotencyError
  | DlpRefused
  | RateLimited
  | DependencyUnavailable
  | AuditIntegrityError
  | DestinationRefused
  | IncidentError
  | WitnessRefused
  | CrmUnsupported
  | ComplianceError
  | KeyServiceUnavailable
  | FieldEncrypted;

/** The codes a subclass owns: thrown only as that class, so a switch on `code` narrows to it. */
export type OwnedErrorCode = SubclassError['code'];
/** The codes thrown as a plain GatehouseError (no data beyond the message and extensions). */
export type PlainErrorCode = Exclude<ErrorCode, OwnedErrorCode>;
type PlainGatehouseError = GatehouseError & { readonly code: PlainErrorCode };

/**
 * Every error Gatehouse throws, discriminated by `code`: `switch (error.code)` narrows to the class
 * that carries that code's data (a TokenError's `reason`, a RateLimited's `retryAfterSeconds`).
 */
export type AnyGatehouseError = SubclassError | PlainGatehouseError;

export function isGatehouseError(error: unknown): error is AnyGatehouseError {
  return error instanceof GatehouseError;
}
