import type { Store } from '../store/index.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/**
 * /readyz: every dependency answers. Details name the dependency and what its absence means, never a
 * credential. `redis` is checked only when configured.
 */
export async function checkReadiness(deps: {
  store: Store;
  idpIssuer: string;
  redis?: { ping(): Promise<void> };
  /** The broker's revocation list: tokens are refused (503) while it is unknown or stale. */
  revocations?: () => { ok: boolean; detail: string };
}): Promise<Readiness> {
  const checks: Readiness['checks'] = {};
  const { redis } = deps;
  await Promise.all([
    // The detail names the backend (sqlite or postgres), so an operator sees which one a node uses.
    probe(checks, 'database', async () => {
      await deps.store.ping();
      return deps.store.kind;
    }),
    ...(redis ? [probe(checks, 'redis', () => redis.ping())] : []),
    probe(checks, 'idp', async () => {
      const response = await fetch(`${deps.idpIssuer}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!response.ok) throw new Error(`discovery answered ${response.status}`);
    }),
  ]);
  if (deps.revocations) checks.revocations = deps.revocations();
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

async function probe(
  checks: Readiness['checks'],
  name: string,
  run: () => Promise<string | void>,
): Promise<void> {
  try {
    const detail = await run();
    checks[name] = detail ? { ok: true, detail } : { ok: true };
  } catch (error) {
    checks[name] = { ok: false, detail: error instanceof Error ? error.message : 'unreachable' };
  }
}
