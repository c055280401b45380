export { auditOrigin, demoOwners, startGatehouse, type Gatehouse, type StartOptions } from './gatehouse.js';
export { createLogger } from './log.js';
export { readMeta, writeMeta } from './meta.js';
