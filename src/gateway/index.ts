export { registerGatewayRoutes, type GatewayDeps } from './routes.js';
export type { ApprovedPlan, PipelineDeps } from './pipeline.js';
export { callerOf, networkOf, refusalEvent } from './pipeline.js';
export { authenticate, governed, recordIntent, recordRefusalsBeforeHandler, type Trail } from './pipeline.js';
export type { TokenClaims } from './stages.js';
export { cedarRuntimePolicy, type RuntimePolicy } from './policy.js';
export { storedWriteKeys, type WriteKeys } from './idempotency.js';
