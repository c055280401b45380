import { auditFile, auditMigrations, moveAuditLogToItsFile } from '../audit/migrations.js';
import { brokerMigrations } from '../broker/migrations.js';
import { catalogMigrations } from '../catalog/migrations.js';
import { classifyMigrations } from '../classify/migrations.js';
import { complianceMigrations } from '../compliance/migrations.js';
import type { Config } from '../config/index.js';
import { controlMigrations } from '../control/migrations.js';
import { crmMigrations } from '../crm/migrations.js';
import { detectMigrations } from '../detect/migrations.js';
import { gatewayMigrations } from '../gateway/migrations.js';
import { decisionLogMigrations } from '../decision-log/migrations.js';
import { secretsMigrations } from '../secrets/migrations.js';
import {
  combineMigrations,
  openStore,
  storeMigrations,
  type Migrations,
  type Store,
} from '../store/index.js';

/**
 * Each module's migrations, by module. The order is the order the modules' parts of '001_initial' ran
 * in when it was one migration (meta, apps, the CRM's tables, the audit log's), so a new database gets
 * the schema an old one has.
 */
export const moduleMigrations: Readonly<Record<string, Migrations>> = {
  store: storeMigrations,
  catalog: catalogMigrations,
  crm: crmMigrations,
  audit: auditMigrations,
  broker: brokerMigrations,
  'decision-log': decisionLogMigrations,
  detect: detectMigrations,
  classify: classifyMigrations,
  gateway: gatewayMigrations,
  compliance: complianceMigrations,
  secrets: secretsMigrations,
  control: controlMigrations,
};

export const gatehouseMigrations: Migrations = combineMigrations(Object.values(moduleMigrations));

/**
 * The store of `config` with every module's tables: the one way anything opens a Gatehouse database.
 * SQLite: the audit log lives in its own file beside gatehouse.db (moved there once from an older one).
 */
export async function openGatehouseStore(config: Config): Promise<Store> {
  const store = await openStore(config, {
    migrations: gatehouseMigrations,
    attach: { [auditFile.schema]: auditFile.name },
  });
  if (store.kind === 'postgres') return store;
  try {
    await store.exclusive('audit-file', () => moveAuditLogToItsFile(store.db));
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
