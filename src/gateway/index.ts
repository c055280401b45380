export { registerAuditRoutes } from './audit-routes.js';
export { registerAppRoutes, type AppRouteDeps } from './app-routes.js';
export { registerPolicyRoutes, type PolicyRouteDeps } from './policy-routes.js';
export { registerIncidentRoutes, type IncidentDeskPort, type IncidentRouteDeps } from './incident-routes.js';
export { registerGatewayRoutes, type GatewayDeps } from './routes.js';
export type { ApprovedPlan, PipelineDeps } from './pipeline.js';
export { networkOf, refusalEvent } from './pipeline.js';
export {
  authenticate,
  governed,
  recordIntent,
  recordRefusalsBeforeHandler,
  requireScope,
  type Trail,
} from './pipeline.js';
export type { TokenClaims } from './stages.js';
export { cedarRuntimePolicy, type RuntimePolicy } from './policy.js';
export { registerOpenApiRoute } from './openapi.js';
export { registerMetricsRoute, serveMetricsOnly, type MetricsSource } from './metrics-route.js';
export { storedWriteKeys, type WriteKeys } from './idempotency.js';
export { registerKeyRoutes, type KeyRouteDeps, type SigningKeysPort } from './key-routes.js';
