import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { governed, type PipelineDeps } from '../gateway/index.js';
import { callerWithScope } from './caller.js';

/** The Prometheus exposition of this node's registry. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/**
 * `/metrics` on the main listener (CONTRACT.md "Health and operations"): behind an `admin` token and
 * audited, because its labels name every app and route and would let anyone enumerate the catalog.
 * A scraper without a token uses `server.metricsPort`, a listener of its own (serveMetricsOnly).
 */
export function registerMetricsRoute(app: FastifyInstance, deps: PipelineDeps, source: MetricsSource): void {
  const shape = {
    tags: ['operations'],
    response: { 200: Type.String({ description: 'the Prometheus text exposition' }) },
  };
  app.get('/metrics', { schema: shape }, async (request, reply) => {
    const text = await governed(deps, request, reply, 'metrics.read', async (trail) => {
      await callerWithScope(deps, request, trail, 'metrics', 'admin');
      trail.reason = 'metrics returned';
      return source.metrics();
    });
    return reply.type(source.contentType).header('cache-control', 'no-store').send(text);
  });
}

/** The separate metrics listener: /metrics and nothing else, for a network only the scraper reaches. */
export function serveMetricsOnly(app: FastifyInstance, source: MetricsSource): void {
  app.get('/metrics', async (_request, reply) =>
    reply
      .type(source.contentType)
      .header('cache-control', 'no-store')
      .send(await source.metrics()),
  );
}
