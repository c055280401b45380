/**
 * @gatehouse/sdk — what a microapp needs to reach CRM data through Gatehouse: sign-in (code + PKCE)
 * and token exchange through the broker, refresh that respects rotation, DPoP with a non-extractable
 * key, a typed CRM client, typed refusals, and W3C trace context with OpenTelemetry spans.
 */
export { Broker, generateDpopKey, type BrokerOptions } from './oauth.js';
export { beginSignIn, completeSignIn, type SignInOptions } from './browser.js';
export { RotatingTokens, type RefreshGrant, type TokenSet, type TokenSource } from './tokens.js';
export { createCrmClient, governedFetch, type CrmClientOptions } from './crm.js';
export {
  createAppStoreClient,
  type AppStoreClient,
  type AppStoreDocument,
  type AppStoreSummary,
} from './app-store.js';
export type { paths as CrmPaths, components as CrmComponents } from './crm-api.js';
export {
  FieldNotAllowed,
  GatehouseProblem,
  PolicyDenied,
  RateLimited,
  SignInRequired,
  TokenRevoked,
  problemOf,
  retryAfterSeconds,
  toTypedError,
  type Problem,
} from './errors.js';
export { newTraceparent, traced } from './trace.js';
