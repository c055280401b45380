/**
 * The token broker: OAuth/OIDC endpoints, token exchange, the authorization code flow with PKCE
 * through the company IdP, refresh-token rotation, revocation and introspection, DPoP, capability
 * tokens, just-in-time elevation, and the rotating signing keys.
 */
export {
  createBroker,
  clientInfoFromApp,
  accessTokenTokenType,
  idTokenType,
  tokenExchangeGrant,
  type Broker,
  type BrowserAnswer,
  type CheckAccounts,
  type ClientInfo,
  type CreateBrokerOptions,
  type DpopRequest,
  type LookupClient,
  type RequestContext,
  type TokenResponse,
} from './broker.js';
export type { AccessTokenClaims } from './access-token.js';
export type { Elevation } from './elevation.js';
export {
  revokeAll,
  subjectKey,
  type AuditSink,
  type RevocationFanout,
  type RevokeAllOptions,
  type RevokeAllResult,
} from './revocation.js';
export type { ReplayStore } from './dpop.js';
export { authenticateChallenge } from './challenge.js';
export { rotateSigningKey, type KeyState } from './keys.js';
export { revokeSigningKey, type RevokeKeyResult } from './key-revocation.js';
export { platformScopes } from './scopes.js';
export { listUserGrants, type UserGrant } from './user-grants.js';
export { registerBrokerRoutes, caller as authenticateBrokerCaller } from './routes.js';
export { jwtBearerAssertionType } from './client-assertion.js';
