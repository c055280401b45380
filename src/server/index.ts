export { startGatehouse, type Gatehouse, type StartOptions } from './gatehouse.js';
export { createLogger } from './log.js';
export { complianceDesk, purgeNow } from './compliance.js';
