export {
  demoListenProblem,
  demoSeedOwners,
  explainConfig,
  loadConfig,
  publicUrl,
  type ConfigOrigin,
  type ConfigSources,
} from './load.js';
export { dlpKinds } from './schema.js';
export type {
  Config,
  ObjectName,
  MaskName,
  RoleConfig,
  DemoUser,
  GatewayConfig,
  LimitsOverrides,
} from './schema.js';
export { defaultConsentPurposes, defaultScopes, demoProfile } from './defaults.js';
export { detectSchema, severities, type DetectConfig, type Severity, type Weekday } from './detect.js';
export type { CatalogConfig } from './catalog.js';
export type { ResidencyConfig } from './residency.js';
export type { AppStoreConfig, DsrConfig, RetentionConfig } from './privacy.js';
export type { CrmConfig } from './crm.js';
export { configEntries, type ConfigEntry } from './show.js';
export type { KeyServiceConfig } from './secrets.js';
