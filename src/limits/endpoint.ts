import type { LimitsBackend } from './backend.js';
import type { TokenBucket } from './config.js';
import { bucketSpec } from './rate.js';
import { throttleTarget } from './throttles.js';

/** The answer for one request: allowed, or which limit refused and when to come back. */
export type EndpointDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly limit: 'client' | 'network';
      readonly retryAfterSeconds: number;
      /** Set when detection's throttle of the caller's network refused: the incident that put it there. */
      readonly incident?: string;
    };

/** The token endpoint's limiter name: its buckets and the throttles detection puts on networks. */
export const tokenEndpointLimiter = 'oauth-token';

/**
 * Where detection's throttle of a caller network at the token endpoint lives among the limits'
 * throttles (as a "user" of a pseudo-app no app id can be: app ids have no colon).
 */
export function tokenEndpointNetwork(network: string): { appId: string; userId: string } {
  return { appId: `endpoint:${tokenEndpointLimiter}`, userId: `network ${network}` };
}

export type EndpointLimiter = (key: { client: string; network: string }) => Promise<EndpointDecision>;

/**
 * Token buckets per client and per caller network for an endpoint outside the gateway (the OAuth token
 * endpoint), in the limits' own store (memory, or Redis shared by every node). One request takes one
 * token from both buckets, or from neither. A store that cannot answer throws (the caller fails closed).
 */
export function createEndpointLimiter(options: {
  /** Names the endpoint's buckets apart from the gateway's. */
  name: string;
  /** The throttles are the limits' own (shared with the gateway), where detection puts a network's. */
  backend: Pick<LimitsBackend, 'buckets' | 'throttles'>;
  perClient: TokenBucket;
  perNetwork: TokenBucket;
  now?: () => number;
}): EndpointLimiter {
  const { name, backend, perClient, perNetwork } = options;
  const now = options.now ?? Date.now;
  return async ({ client, network }) => {
    const at = now();
    const { appId, userId } = tokenEndpointNetwork(network);
    const throttle = backend.throttles.current(throttleTarget(appId, userId), at);
    const specs = [
      bucketSpec(`${name}:client:${encodeURIComponent(client)}`, perClient),
      bucketSpec(`${name}:network:${encodeURIComponent(network)}`, perNetwork),
      ...(throttle
        ? [
            bucketSpec(
              `${name}:throttle:${encodeURIComponent(network)}:${throttle.generation}`,
              throttle.bucket,
            ),
          ]
        : []),
    ];
    const { allowed, tokens } = await backend.buckets.take(specs, 1, at);
    if (allowed) return { allowed: true };
    const waits = specs.map((spec, i) => Math.max(0, 1 - (tokens[i] ?? 0)) / spec.refillPerSecond);
    const [clientWait = 0, networkWait = 0, throttleWait = 0] = waits;
    const throttled = throttle !== undefined && throttleWait > 0;
    return {
      allowed: false,
      limit: clientWait >= Math.max(networkWait, throttleWait) ? 'client' : 'network',
      retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits))),
      ...(throttled && throttle.incident !== undefined && { incident: throttle.incident }),
    };
  };
}
