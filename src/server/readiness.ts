import type { Store } from '../store/index.js';

/** A check's verdict: `degraded` still serves (with less), `not_ready` cannot serve what requests need. */
export type CheckStatus = 'ready' | 'degraded' | 'not_ready';

export interface Readiness {
  /** False only when a check is not ready: a degraded node still takes traffic. */
  ready: boolean;
  status: CheckStatus;
  /** `ok` is false when not ready; `degraded: true` marks a check that serves with less. */
  checks: Record<string, { ok: boolean; degraded?: true; detail?: string }>;
}

/**
 * One named check. `run` answers a detail (ready), `{ degraded: detail }`, or throws saying what is
 * wrong (not ready). Details name the dependency and what its absence means, never a credential.
 */
export interface ReadinessCheck {
  readonly name: string;
  run(): Promise<string | void | { degraded: string }>;
}

/** /readyz: runs every check at once; the node is ready unless one of them is not. */
export async function checkReadiness(list: readonly ReadinessCheck[]): Promise<Readiness> {
  const checks: Readiness['checks'] = {};
  await Promise.all(
    list.map(async ({ name, run }) => {
      try {
        const answer = await run();
        if (typeof answer === 'object') checks[name] = { ok: true, degraded: true, detail: answer.degraded };
        else checks[name] = answer ? { ok: true, detail: answer } : { ok: true };
      } catch (error) {
        checks[name] = { ok: false, detail: error instanceof Error ? error.message : 'unreachable' };
      }
    }),
  );
  const results = Object.values(checks);
  const ready = results.every((c) => c.ok);
  const status: CheckStatus = !ready ? 'not_ready' : results.some((c) => c.degraded) ? 'degraded' : 'ready';
  return { ready, status, checks };
}

/** The checks every node has; the composition root adds those of what it wires (audit, policy, keys). */
export function dependencyChecks(deps: {
  store: Store;
  idpIssuer: string;
  redis?: { ping(): Promise<void> };
}): ReadinessCheck[] {
  const { redis } = deps;
  return [
    // The detail names the backend (sqlite or postgres), so an operator sees which one a node uses.
    {
      name: 'database',
      run: async () => {
        await deps.store.ping();
        return deps.store.kind;
      },
    },
    ...(redis ? [{ name: 'redis', run: () => redis.ping() }] : []),
    {
      name: 'idp',
      run: async () => {
        const response = await fetch(`${deps.idpIssuer}/.well-known/openid-configuration`, {
          signal: AbortSignal.timeout(2000),
        });
        if (!response.ok) throw new Error(`discovery answered ${response.status}`);
      },
    },
  ];
}
