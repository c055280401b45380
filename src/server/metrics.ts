import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status' | 'app'>;
  readonly latency: Histogram<'route'>;
  readonly decisions: Counter<'outcome' | 'app'>;
}

/** One registry per server, so several servers in one process (tests) keep separate counts. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by route, method, status and app',
      labelNames: ['route', 'method', 'status', 'app'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'gatehouse_decisions_total',
      help: 'Gateway decisions by outcome (allow, deny, error) and app',
      labelNames: ['outcome', 'app'],
      registers: [registry],
    }),
  };
}
