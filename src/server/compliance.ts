/**
 * Wires the compliance module into the server: its routes governed by the gateway's pipeline (token,
 * limits, scope, one audit event per call), and the scheduled purge and DSR sweep.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.js';
import type { Catalog } from '../catalog/index.js';
import { effectiveClasses } from '../classify/index.js';
import {
  copyKeepersOf,
  createAppStore,
  createDsrDesk,
  registerAppStoreRoutes,
  runPurge,
  type Caller,
  type CallRecord,
  type DsrDesk,
  type Governance,
} from '../compliance/index.js';
import type { Config } from '../config/index.js';
import type { CrmConnector } from '../crm/index.js';
import { AccessDenied } from '../errors/index.js';
import {
  authenticate,
  governed,
  recordIntent,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
} from '../gateway/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';

export interface ComplianceWiring {
  app: FastifyInstance;
  pipeline: PipelineDeps;
  config: Config;
  db: Db;
  audit: AuditLog;
  crm: CrmConnector;
  secrets: SecretStore;
  catalog: Catalog;
  logger: Logger;
}

/**
 * Mounts the app store routes (the data plane of microapps) and starts the scheduled jobs; answers the
 * DSR desk and the governance the admin API's DSR routes run on, and how to stop the jobs.
 */
export function startCompliance(w: ComplianceWiring): {
  desk: DsrDesk;
  governance: Governance;
  stop(): void;
} {
  const governance = pipelineGovernance(w.pipeline);
  const store = createAppStore(w.db, w.config);
  const dsr = complianceDesk(w);
  registerAppStoreRoutes(w.app, { governance, store });
  const interval = w.config.retention.purgeIntervalMs;
  if (interval === 0) return { desk: dsr, governance, stop: () => undefined };
  const timer = setInterval(() => {
    // Once per cluster: where the audit log is integrated.
    if (!w.audit.sequencing()) return;
    purgeNow(w)
      .then(() => dsr.sweep())
      .catch((err: unknown) => w.logger.error({ err }, 'compliance purge or DSR sweep failed'));
  }, interval);
  timer.unref();
  return { desk: dsr, governance, stop: () => clearInterval(timer) };
}

/** The DSR desk over the server's (or the CLI's) parts. */
export function complianceDesk(w: Omit<ComplianceWiring, 'app' | 'pipeline' | 'logger'>) {
  return createDsrDesk({
    db: w.db,
    audit: w.audit,
    crm: w.crm,
    secrets: w.secrets,
    config: w.config.dsr,
    copyKeepers: async () => copyKeepersOf(await w.catalog.listApps()),
  });
}

/** One purge run over the data the server (or the CLI) holds. */
export function purgeNow(w: Pick<ComplianceWiring, 'db' | 'audit' | 'crm' | 'config'>) {
  return runPurge({
    db: w.db,
    audit: w.audit,
    retention: w.config.retention,
    fieldClasses: () => effectiveClasses(w.db, w.crm),
  });
}

function pipelineGovernance(deps: PipelineDeps): Governance {
  return {
    call<T>(
      request: FastifyRequest,
      reply: FastifyReply,
      what: { action: string; resourceType: string; scopes: readonly string[] },
      work: (caller: Caller, record: CallRecord, beforeChange: () => Promise<void>) => Promise<T>,
    ): Promise<T> {
      return governed(deps, request, reply, what.action, async (trail) => {
        trail.resourceType = what.resourceType;
        const principal = await authenticate(deps, request, trail);
        const held = what.scopes.filter((scope) => principal.scopes.includes(scope));
        if (held.length === 0) {
          throw new AccessDenied('SCOPE_MISSING', `this call needs the ${what.scopes.join(' or ')} scope`, {
            scope: what.scopes.join(' '),
          });
        }
        trail.scopes = held;
        const record: CallRecord = { resourceId: '', reason: '' };
        try {
          return await work(
            {
              appId: principal.appId,
              userId: principal.userId,
              email: principal.email,
              scopes: principal.scopes,
            },
            record,
            async () => {
              trail.resourceId = record.resourceId;
              await recordIntent(deps, request, trail, []);
            },
          );
        } finally {
          trail.resourceId = record.resourceId;
          trail.reason = record.reason;
          if (record.recordCount !== undefined) trail.recordCount = record.recordCount;
        }
      }) as Promise<T>;
    },
    recordRefusals(scope, action, resourceType) {
      recordRefusalsBeforeHandler(scope, deps, () => ({ action, resourceType }));
    },
  };
}
