import type { Linter } from 'eslint';

/** src/modules.json: each module and the modules it may import (through their index.ts). */
export interface ModuleTable {
  modules: Record<string, { dependsOn: string[] }>;
  exceptions?: Array<{ arrow: string; reason: string }>;
}

export function readModuleTable(file: string | URL): ModuleTable;

export function boundaryZones(
  table: ModuleTable,
  sourceDir?: string,
): Array<{ target: string; from: string; except?: string[]; message: string }>;

export function moduleBoundaries(
  table: ModuleTable,
  options?: { sourceDir?: string; files?: string[]; basePath?: string },
): Linter.Config;
