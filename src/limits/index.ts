export { createLimits, type Limits, type LimitsOptions } from './limits.js';
export {
  defaultLimitsConfig,
  type BreakerConfig,
  type BulkExportConfig,
  type LimitsConfig,
  type RateWindow,
} from './config.js';
export { rateLimitHeaders, type RateDecision, type RateScope } from './rate.js';
export { bulkThreshold, type BulkExportEvent, type BulkReadDecision } from './bulk-guard.js';
export { isConnectorFailure, type BreakerState, type CircuitBreaker } from './breaker.js';
export {
  memoryBackend,
  type DistinctWindowStore,
  type LimitsBackend,
  type PointsCounter,
} from './backend.js';
export { BulkExportBlocked, CircuitOpen, LimitsUnavailable, type LimitsReason } from './errors.js';
