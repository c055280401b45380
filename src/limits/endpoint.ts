import type { LimitsBackend } from './backend.js';
import type { TokenBucket } from './config.js';
import { bucketSpec } from './rate.js';

/** The answer for one request: allowed, or which limit refused and when to come back. */
export type EndpointDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly limit: 'client' | 'network'; readonly retryAfterSeconds: number };

export type EndpointLimiter = (key: { client: string; network: string }) => Promise<EndpointDecision>;

/**
 * Token buckets per client and per caller network for an endpoint outside the gateway (the OAuth token
 * endpoint), in the limits' own store (memory, or Redis shared by every node). One request takes one
 * token from both buckets, or from neither. A store that cannot answer throws (the caller fails closed).
 */
export function createEndpointLimiter(options: {
  /** Names the endpoint's buckets apart from the gateway's. */
  name: string;
  backend: Pick<LimitsBackend, 'buckets'>;
  perClient: TokenBucket;
  perNetwork: TokenBucket;
  now?: () => number;
}): EndpointLimiter {
  const { name, backend, perClient, perNetwork } = options;
  const now = options.now ?? Date.now;
  return async ({ client, network }) => {
    const specs = [
      bucketSpec(`${name}:client:${encodeURIComponent(client)}`, perClient),
      bucketSpec(`${name}:network:${encodeURIComponent(network)}`, perNetwork),
    ] as const;
    const { allowed, tokens } = await backend.buckets.take(specs, 1, now());
    if (allowed) return { allowed: true };
    const waits = specs.map((spec, i) => Math.max(0, 1 - (tokens[i] ?? 0)) / spec.refillPerSecond);
    const clientWait = waits[0] ?? 0;
    const networkWait = waits[1] ?? 0;
    return {
      allowed: false,
      limit: clientWait >= networkWait ? 'client' : 'network',
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(clientWait, networkWait))),
    };
  };
}
