import type { Config } from '../config/index.js';
import type { Gatehouse, StartOptions } from './gatehouse.js';

export type { Gatehouse, StartOptions } from './gatehouse.js';
export {
  openGatehouseModules,
  auditLogOptions,
  type GatehouseModules,
  type ModulesOptions,
  type ModulesRole,
} from './modules.js';
export { createLogger } from './log.js';

/** The HTTP server, loaded when started: its dependencies stay out of CLI commands that do not serve. */
export async function startGatehouse(config: Config, options?: StartOptions): Promise<Gatehouse> {
  const { startGatehouse: start } = await import('./gatehouse.js');
  return start(config, options);
}

/** The compliance wiring the server and the CLI's local commands share, loaded when used. */
export function loadComplianceWiring(): Promise<typeof import('./compliance.js')> {
  return import('./compliance.js');
}

/** `serve --workers N`: the primary's and the workers' sides of node:cluster, loaded when serving. */
export function loadClusterWiring(): Promise<typeof import('./cluster.js')> {
  return import('./cluster.js');
}
