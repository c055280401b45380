export { openStore, type Store, type Db } from './open.js';
export type { Database } from './schema.js';
export { readMeta, writeMeta, type MetaKey } from './meta.js';
