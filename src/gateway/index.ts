export { registerAuditRoutes } from './audit-routes.js';
export { registerGatewayRoutes, type GatewayDeps } from './routes.js';
export type { PipelineDeps } from './pipeline.js';
export type { TokenClaims } from './stages.js';
export { cedarRuntimePolicy, type RuntimePolicy } from './policy.js';
export { registerOpenApiRoute } from './openapi.js';
