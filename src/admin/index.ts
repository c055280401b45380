/**
 * The admin module: the control-plane HTTP API (apps, policies, incidents, audit reads, keys, DSR,
 * runbooks, the console's own calls, /metrics) on top of the domain modules. The console and the CLI
 * are its clients; the gateway serves only the data plane. Everything else imports only this file.
 */
import type { FastifyInstance } from 'fastify';
import type { DsrDesk, Governance } from '../compliance/index.js';
import type { PipelineDeps } from '../gateway/index.js';
import { registerAppRoutes, type AppRouteDeps } from './app-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerConsoleRoutes, type ConsoleRouteDeps } from './console-routes.js';
import { registerDsrRoutes } from './dsr-routes.js';
import { registerIncidentRoutes, type IncidentDeskPort } from './incident-routes.js';
import { registerKeyRoutes, type SigningKeysPort } from './key-routes.js';
import { registerMetricsRoute, type MetricsSource } from './metrics-route.js';
import { registerOpenApiDocument } from './openapi.js';
import { registerPolicyRoutes, type PolicyRouteDeps } from './policy-routes.js';
import { registerRunbookRoutes, type RunbookRouteDeps } from './runbook-routes.js';
import { declareShapes } from './shapes.js';

export { serveMetricsOnly, type MetricsSource } from './metrics-route.js';
export type { GrantedApp } from './console-routes.js';
export type { IncidentDeskPort } from './incident-routes.js';
export type { SigningKeysPort } from './key-routes.js';

/** What each group of admin routes needs beyond the pipeline every admin call runs in. */
type Own<T> = Omit<T, keyof PipelineDeps>;

export interface AdminDeps {
  /** Token, limits, policy version and audit: every admin call is governed and audited like a CRM read. */
  pipeline: PipelineDeps;
  apps: Own<AppRouteDeps>;
  policies: Own<PolicyRouteDeps>;
  incidents: IncidentDeskPort;
  keys: SigningKeysPort;
  console: Own<ConsoleRouteDeps>;
  runbooks: Own<RunbookRouteDeps>;
  dsr: { desk: DsrDesk; governance: Governance };
  /** /metrics on this listener behind an admin token; absent when it has a listener of its own. */
  metrics?: MetricsSource;
}

/** Mounts every admin route, and /admin/v1/openapi.json describing them, in one encapsulated context. */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { pipeline } = deps;
  void app.register(async (admin) => {
    declareShapes(admin);
    await registerOpenApiDocument(admin);
    registerAppRoutes(admin, { ...pipeline, ...deps.apps });
    registerPolicyRoutes(admin, { ...pipeline, ...deps.policies });
    registerIncidentRoutes(admin, { ...pipeline, incidents: deps.incidents });
    registerKeyRoutes(admin, { ...pipeline, keys: deps.keys });
    registerAuditRoutes(admin, pipeline);
    registerConsoleRoutes(admin, { ...pipeline, ...deps.console });
    registerRunbookRoutes(admin, { ...pipeline, ...deps.runbooks });
    registerDsrRoutes(admin, { governance: deps.dsr.governance, dsr: deps.dsr.desk, audit: pipeline.audit });
    if (deps.metrics) registerMetricsRoute(admin, pipeline, deps.metrics);
  });
}
