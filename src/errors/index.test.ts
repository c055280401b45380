import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  errorRegistry,
  GatehouseError,
  problemSlug,
  RateLimited,
  TokenError,
  tokenRefusals,
  toProblem,
  type AnyGatehouseError,
  type ErrorCode,
  type OwnedErrorCode,
  type TokenRefusalReason,
} from './index.js';

/**
 * The README's error table repeats the registry, whose text the `/problems` pages every problem `type`
 * points to are made of: one row per code with its status, title and what to do, as Fastify's
 * errors.test.js pins its codes to its docs.
 */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Errors'));
const rows = new Map(
  [
    ...section.matchAll(
      /^\| <a id="([a-z-]+)"><\/a>`([A-Z_]+)`\s*\| (\d{3})\s*\| ([^|]+?)\s*\| ([^|]+?)\s*\|$/gm,
    ),
  ].map(([, slug, code, status, title, remedy]) => [code, { slug, status: Number(status), title, remedy }]),
);

describe('the README error table', () => {
  it.each(Object.keys(errorRegistry) as ErrorCode[])(
    'documents %s with its status, title and what to do',
    (code) => {
      const { status, title, remedy } = errorRegistry[code];
      const problem = toProblem(new GatehouseError(code, 'x'), { publicUrl: 'https://gatehouse.test/' });
      expect(problem.type).toBe(`https://gatehouse.test/problems/${problemSlug(code)}`);
      expect(rows.get(code)).toEqual({ slug: problemSlug(code), status, title, remedy });
    },
  );

  it('has no row for a code that does not exist', () => {
    expect([...rows.keys()].filter((code) => !(code in errorRegistry))).toEqual([]);
  });
});

/** Every code a subclass owns; tsc checks this list is exactly OwnedErrorCode, no more, no fewer. */
const owned = {
  CONFIG_INVALID: true,
  INVALID_INPUT: true,
  TOKEN_MISSING: true,
  TOKEN_INVALID: true,
  TOKEN_EXPIRED: true,
  TOKEN_REVOKED: true,
  TOKEN_DPOP_INVALID: true,
  OAUTH_INVALID_REQUEST: true,
  OAUTH_INVALID_GRANT: true,
  OAUTH_INVALID_SCOPE: true,
  OAUTH_INVALID_CLIENT: true,
  OAUTH_UNSUPPORTED_GRANT_TYPE: true,
  OAUTH_INVALID_DPOP_PROOF: true,
  OAUTH_ACCESS_DENIED: true,
  OAUTH_INVALID_AUTHORIZATION_DETAILS: true,
  POLICY_DENIED: true,
  FIELD_NOT_ALLOWED: true,
  SCOPE_MISSING: true,
  ELEVATION_NOT_FOUND: true,
  ELEVATION_CONFLICT: true,
  ELEVATION_SELF_REVIEW: true,
  ELEVATION_NOT_REVIEWER: true,
  APP_EXISTS: true,
  APP_STATE: true,
  APP_NOT_OWNER: true,
  SEPARATION_OF_DUTIES: true,
  BUNDLE_NOT_APPROVED: true,
  NOT_FOUND: true,
  PRECONDITION_FAILED: true,
  PRECONDITION_REQUIRED: true,
  IDEMPOTENCY_KEY_REUSED: true,
  IDEMPOTENCY_KEY_IN_USE: true,
  DLP_REFUSED: true,
  RATE_LIMITED: true,
  QUOTA_EXCEEDED: true,
  AUDIT_UNAVAILABLE: true,
  DEPENDENCY_UNAVAILABLE: true,
  OVERLOADED: true,
  DATABASE_BUSY: true,
  AUDIT_LOG_DAMAGED: true,
  POLICY_UNAVAILABLE: true,
  AUDIT_INTEGRITY: true,
  DESTINATION_REFUSED: true,
  INCIDENT_NOT_FOUND: true,
  INCIDENT_CONFLICT: true,
  WITNESS_REFUSED: true,
  CRM_UNSUPPORTED: true,
  STORE_DOCUMENT_TOO_LARGE: true,
  STORE_LIMIT_REACHED: true,
  DSR_NOT_FOUND: true,
  DSR_SUBJECT_UNKNOWN: true,
  REPORT_INVALID: true,
  KEY_SERVICE_UNAVAILABLE: true,
  FIELD_ENCRYPTED: true,
  CONTROL_STALE: true,
} as const satisfies Record<OwnedErrorCode, true>;

describe('AnyGatehouseError', () => {
  it('a code that a subclass owns is never thrown as a plain GatehouseError', () => {
    const sources = readdirSync(new URL('../', import.meta.url), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
      .map((file) => [file, readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')] as const);
    const raw = sources.flatMap(([file, text]) =>
      [...text.matchAll(/new GatehouseError\(\s*([^,]+),/g)].flatMap(([, first]) =>
        [...(first ?? '').matchAll(/'([A-Z_]+)'/g)]
          .map(([, code]) => code)
          .filter((code) => code !== undefined && code in owned)
          .map((code) => `${file}: ${code}`),
      ),
    );
    expect(raw).toEqual([]);
  });

  it("narrows on code to the class that carries the code's data", () => {
    const explain = (error: AnyGatehouseError): string => {
      switch (error.code) {
        case 'TOKEN_REVOKED':
          return error.reason;
        case 'RATE_LIMITED':
          return String(error.retryAfterSeconds);
        default:
          return error.code;
      }
    };
    expect(explain(new TokenError('app_not_approved', 'x'))).toBe('app_not_approved');
    expect(explain(new RateLimited('RATE_LIMITED', 'per-app', 3))).toBe('3');
  });

  it.each(Object.entries(tokenRefusals))('a token refused as %s answers %s', (reason, code) => {
    const error = new TokenError(reason as TokenRefusalReason, 'x');
    expect(error.code).toBe(code);
    expect(error.reason).toBe(reason);
    expect(toProblem(error, { publicUrl: 'https://gatehouse.test' })).not.toHaveProperty('reason');
  });
});
