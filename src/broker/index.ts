export {
  createBroker,
  accessTokenTokenType,
  idTokenType,
  tokenExchangeGrant,
  type Broker,
  type ClientInfo,
  type CreateBrokerOptions,
  type LookupClient,
  type TokenResponse,
} from './broker.js';
export type { AccessTokenClaims } from './access-token.js';
export { registerBrokerRoutes } from './routes.js';
