export { demoSeedOwners, loadConfig, publicUrl, type ConfigSources } from './load.js';
export type { Config, ObjectName, MaskName, RoleConfig, DemoUser } from './schema.js';
