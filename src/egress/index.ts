/**
 * Outbound calls to configured addresses, refused at connect time unless the address is public or the
 * operator allow-listed it.
 */
export {
  createEgress,
  guardedLookup,
  type Egress,
  type EgressOptions,
  type OutboundRequest,
  type OutboundResponse,
} from './egress.js';
export { destinationRefusal, parseAllowList, type AllowList } from './destination.js';
