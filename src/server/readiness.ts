import type { Store } from '../store/index.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/** /readyz: every dependency answers. Details name the dependency, never a credential. */
export async function checkReadiness(deps: { store: Store; idpIssuer: string }): Promise<Readiness> {
  const checks: Readiness['checks'] = {};
  await Promise.all([
    probe(checks, 'database', () => deps.store.ping()),
    probe(checks, 'idp', async () => {
      const response = await fetch(`${deps.idpIssuer}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!response.ok) throw new Error(`discovery answered ${response.status}`);
    }),
  ]);
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

async function probe(checks: Readiness['checks'], name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
    checks[name] = { ok: true };
  } catch (error) {
    checks[name] = { ok: false, detail: error instanceof Error ? error.message : 'unreachable' };
  }
}
