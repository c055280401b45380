import type { FastifyInstance } from 'fastify';
import { DependencyUnavailable } from '../errors/index.js';

/**
 * What a stale node still answers: whether it lives, why it is not ready, its metrics, and the pages
 * that explain its refusals (static text from the error registry).
 */
const answeredWhileStale = new Set(['/healthz', '/readyz', '/metrics', '/problems']);
const staleAnswers = (path: string) => answeredWhileStale.has(path) || path.startsWith('/problems/');

/**
 * Fails closed on a stale control snapshot: every request but health, metrics and the problem pages is refused with 503
 * CONTROL_STALE, so no token is issued and no CRM data served under policy or keys that may have
 * changed elsewhere. Register before the routes.
 */
export function refuseWhileStale(app: FastifyInstance, stale: () => string | undefined): void {
  // Callback form: an async hook would cost every request a promise for a check that never waits.
  app.addHook('onRequest', (request, _reply, done) => {
    const reason = stale();
    if (reason === undefined || staleAnswers(request.url.split('?')[0] ?? '')) return done();
    done(
      new DependencyUnavailable(
        'CONTROL_STALE',
        `this node cannot confirm its policy and keys with the store: ${reason}; retry on another node`,
      ),
    );
  });
}
