/** The RFC 7807 problem document Gatehouse answers with, as the SDK sees it. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Any refusal from Gatehouse, with its stable `code` and the request id to quote to the platform team. */
export class GatehouseProblem extends Error {
  override readonly name: string = 'GatehouseProblem';
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  readonly problem: Problem;

  constructor(problem: Problem, requestId?: string) {
    super(problem.detail ?? problem.title ?? `Gatehouse answered ${problem.status}`);
    this.status = problem.status;
    this.code = problem.code ?? 'UNKNOWN';
    this.requestId = requestId;
    this.problem = problem;
  }
}

/** 403: fields outside the scopes the app was granted; `fields` names them. */
export class FieldNotAllowed extends GatehouseProblem {
  override readonly name = 'FieldNotAllowed';
  get fields(): string[] {
    const fields = this.problem.fields;
    return Array.isArray(fields) ? fields.filter((f): f is string => typeof f === 'string') : [];
  }
}

/** 403: the policy refused; `rule` names the rule that decided when the gateway does. */
export class PolicyDenied extends GatehouseProblem {
  override readonly name = 'PolicyDenied';
  get rule(): string | undefined {
    const rule = this.problem.rule ?? this.problem.policy_id;
    return typeof rule === 'string' ? rule : undefined;
  }
}

/** 429: slow down; retry after `retryAfterSeconds`. */
export class RateLimited extends GatehouseProblem {
  override readonly name = 'RateLimited';
  constructor(
    problem: Problem,
    requestId: string | undefined,
    readonly retryAfterSeconds: number,
  ) {
    super(problem, requestId);
  }
}

/** 401 TOKEN_REVOKED: access was withdrawn (by the user, an admin or containment); sign in again. */
export class TokenRevoked extends GatehouseProblem {
  override readonly name = 'TokenRevoked';
  get incident(): string | undefined {
    const incident = this.problem.incident_id ?? this.problem.incident;
    return typeof incident === 'string' ? incident : undefined;
  }
}

/** 401 that a refresh did not cure, or no sign-in at all: the user must sign in (again). */
export class SignInRequired extends GatehouseProblem {
  override readonly name = 'SignInRequired';
}

/** The typed error for a problem answer: which class depends on the stable code, never the message. */
export function toTypedError(
  problem: Problem,
  requestId?: string,
  retryAfter?: string | null,
): GatehouseProblem {
  switch (problem.code) {
    case 'FIELD_NOT_ALLOWED':
      return new FieldNotAllowed(problem, requestId);
    case 'POLICY_DENIED':
    case 'SCOPE_MISSING':
      return new PolicyDenied(problem, requestId);
    case 'RATE_LIMITED':
    case 'QUOTA_EXCEEDED':
      return new RateLimited(problem, requestId, retryAfterSeconds(retryAfter));
    case 'TOKEN_REVOKED':
      return new TokenRevoked(problem, requestId);
    default:
      return problem.status === 401
        ? new SignInRequired(problem, requestId)
        : new GatehouseProblem(problem, requestId);
  }
}

/** Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date); 1 when absent or unreadable. */
export function retryAfterSeconds(header: string | null | undefined, now = Date.now()): number {
  if (!header) return 1;
  if (/^\d+$/.test(header)) return Math.max(1, Number(header));
  const at = Date.parse(header);
  return Number.isNaN(at) ? 1 : Math.max(1, Math.ceil((at - now) / 1000));
}

/** Reads a non-OK answer into its typed error; a body that is no problem document still gives one. */
export async function problemOf(response: Response): Promise<GatehouseProblem> {
  const body: unknown = await response.json().catch(() => undefined);
  const problem: Problem =
    typeof body === 'object' && body !== null
      ? { ...(body as Record<string, unknown>), status: response.status }
      : { status: response.status, title: response.statusText };
  return toTypedError(
    problem,
    response.headers.get('x-request-id') ?? undefined,
    response.headers.get('retry-after'),
  );
}
