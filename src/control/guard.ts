import type { FastifyInstance } from 'fastify';
import { DependencyUnavailable } from '../errors/index.js';

/** What a stale node still answers: whether it lives, why it is not ready, its metrics. */
const answeredWhileStale = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Fails closed on a stale control snapshot: every request but health and metrics is refused with 503
 * CONTROL_STALE, so no token is issued and no CRM data served under policy or keys that may have
 * changed elsewhere. Register before the routes.
 */
export function refuseWhileStale(app: FastifyInstance, stale: () => string | undefined): void {
  app.addHook('onRequest', async (request) => {
    const reason = stale();
    if (reason === undefined || answeredWhileStale.has(request.url.split('?')[0] ?? '')) return;
    throw new DependencyUnavailable(
      'CONTROL_STALE',
      `this node cannot confirm its policy and keys with the store: ${reason}; retry on another node`,
    );
  });
}
