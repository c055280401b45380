export {
  openStore,
  openSession,
  storeKindOf,
  lockSequence,
  tryAdvisoryLock,
  releaseAdvisoryLock,
  type Store,
  type StoreOptions,
  type StoreKind,
  type Session,
  type Db,
} from './open.js';
export type { Database } from './schema.js';
export { combineMigrations, storeMigrations, type Migrations } from './migrations.js';
export { CompiledShapes } from './compiled.js';
export { readMeta, writeMeta, type MetaKey } from './meta.js';
export { bumpControlRevision, controlChannel, readControlRevision } from './revision.js';
export { reusingStatements } from './statements.js';
