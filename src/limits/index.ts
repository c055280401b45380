export { createLimits, type Limits, type LimitsOptions, type ThrottleAim } from './limits.js';
export {
  createEndpointLimiter,
  tokenEndpointLimiter,
  tokenEndpointNetwork,
  type EndpointDecision,
  type EndpointLimiter,
} from './endpoint.js';
export {
  defaultLimitsConfig,
  type BreakerConfig,
  type BulkExportConfig,
  type LimitsConfig,
  type TokenBucket,
} from './config.js';
export {
  appBucket,
  rateLimitHeaders,
  retryAfterSeconds,
  type AppPlan,
  type RateDecision,
  type RateLimitState,
  type RateScope,
} from './rate.js';
export {
  appBudget,
  bulkThreshold,
  userBudget,
  type BudgetScope,
  type BulkExportEvent,
  type BulkReadDecision,
  type BulkReadKey,
  type ReadPlan,
} from './bulk-guard.js';
export { isConnectorFailure, type BreakerState, type CircuitBreaker } from './breaker.js';
export {
  memoryBackend,
  type DistinctWindowStore,
  type BucketSpec,
  type LimitsBackend,
  type TokenBucketStore,
} from './backend.js';
export { redisBackend, type Fanout, type RedisLimitsBackend, type RedisLimitsOptions } from './redis.js';
export { throttleTarget, type Throttle, type ThrottleStore } from './throttles.js';
export { BulkExportBlocked, CircuitOpen, LimitsUnavailable, type LimitsReason } from './errors.js';
export { limitsHub, primaryHeldBackend, type LimitsChannel, type ThrottleChange } from './cluster.js';
