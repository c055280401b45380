import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { auditOrigin, auditVerifierKey, type AuditEvent, type AuditLog } from '../audit/index.js';
import {
  authenticateBrokerCaller,
  clientInfoFromApp,
  createBroker,
  listUserGrants,
  registerBrokerRoutes,
} from '../broker/index.js';
import {
  createLifecycle,
  purposeInForce,
  refreshUsage,
  startCatalogUpkeep,
  type Catalog,
} from '../catalog/index.js';
import { demoListenProblem, demoSeedOwners, publicUrl, type Config } from '../config/index.js';
import { registerConsole } from '../console/index.js';
import {
  crmObjects,
  isCrmEmpty,
  reencryptFields,
  seedCrm,
  type CrmConnector,
  type CrmObject,
  type FieldKeys,
} from '../crm/index.js';
import { createDevIdp, type DevIdp } from '../devidp/index.js';
import { ConfigError } from '../errors/index.js';
import {
  callerOf,
  cedarRuntimePolicy,
  networkOf,
  registerGatewayRoutes,
  storedWriteKeys,
  refusalEvent,
  type ApprovedPlan,
} from '../gateway/index.js';
import {
  createEndpointLimiter,
  tokenEndpointLimiter,
  createLimits,
  defaultLimitsConfig,
  memoryBackend,
  type LimitsConfig,
} from '../limits/index.js';
import { judgeManifest, regionField, type RowCondition } from '../policy/index.js';
import { openDecisionLog } from '../decision-log/index.js';
import { registerAdminRoutes, serveMetricsOnly, type AdminDeps } from '../admin/index.js';
import { appResidency, regionOf, residencyConditions, transferOf } from '../compliance/index.js';
import { requireKeyService } from '../secrets/index.js';
import { writeMeta, type Store } from '../store/index.js';
import { refuseWhileStale } from '../control/index.js';
import { systemClock, type Clock } from '../detect/index.js';
import { createEgress, type EgressOptions } from '../egress/index.js';
import { startCompliance } from './compliance.js';
import { startControl } from './control.js';
import { startDetection } from './detection.js';
import { bothFanouts, type ClusterMembership } from './cluster.js';
import { createHttpServer, type Refusal } from './http.js';
import { registerProblemPages } from './problems.js';
import { reloadTlsOnChange, tlsContextOptions } from './tls.js';
import { createLogger, runtimeWarning } from './log.js';
import { collectOldGenerationSooner } from './heap.js';
import { openGatehouseModules } from './modules.js';
import { classesOfFields, createMetrics, recordsReadBy } from './metrics.js';
import { checkReadiness, dependencyChecks, type ReadinessCheck } from './readiness.js';

export interface Gatehouse {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly config: Config;
  /** Where the metrics listener answers, when `server.metricsPort` gives /metrics one of its own. */
  readonly metricsUrl?: string;
  /** Resolves once detection has handled every event appended so far (its incidents and containment). */
  detectionIdle(): Promise<void>;
  /** Where the CRM vendor's fake answers, when demo mode runs on one (`crm.kind` salesforce or hubspot). */
  readonly crmVendorUrl?: string;
  /** Stops accepting requests, finishes those in flight, signs a final checkpoint, closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Progress of first-start seeding in demo mode. */
  onSeedProgress?: (done: number, total: number) => void;
  /**
   * Wraps the CRM connector the gateway uses (fault injection in tests: a connector that fails, to see
   * the circuit breaker open). Seeding and readiness still use the real one.
   */
  wrapConnector?: (crm: CrmConnector) => CrmConnector;
  /**
   * The time of detection, the limits and the gateway's audit events: real time unless given (a
   * simulated clock lets `gatehouse simulate` and tests play days of traffic in seconds).
   */
  clock?: Clock;
  /**
   * Name resolution and trusted CAs for outbound calls to hooks: tests stand in for DNS (a public-looking
   * name that resolves to loopback) and trust their own receiver's certificate.
   */
  egress?: Pick<EgressOptions, 'lookup' | 'ca'>;
  /** This process is one worker of `serve --workers N` (cluster.ts). */
  cluster?: ClusterMembership;
}

/** The key that authenticates the gateway's list cursors. */
const cursorKeyName = 'gateway/cursor-key';

/** The composition root: builds every module from configuration, mounts the routes and listens. */
export async function startGatehouse(config: Config, options: StartOptions = {}): Promise<Gatehouse> {
  const logger = options.logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  const clock = options.clock ?? systemClock;
  const oldRuntime = runtimeWarning(process.version);
  if (oldRuntime) logger.warn(oldRuntime);
  collectOldGenerationSooner();
  if (!config.demo && !config.idp.issuer) {
    throw new ConfigError('config: idp.issuer is required outside demo mode (or start with --demo)');
  }
  const listenProblem = demoListenProblem(config);
  if (listenProblem) throw new ConfigError(listenProblem);
  const reserved = config.server.port === 0 ? await reservePort(config.server.host) : undefined;
  const port = reserved?.port ?? config.server.port;
  const url = publicUrl(config, port);
  // The development IdP always lives at /idp; the broker trusts idp.issuer when one is configured.
  const devIdpIssuer = `${url}/idp`;
  const idpIssuer = config.idp.issuer ?? devIdpIssuer;

  const modules = await openGatehouseModules(config, {
    role: 'serve',
    // A cluster's primary signs the final checkpoint once, after every worker has stopped.
    finalCheckpoint: options.cluster === undefined,
    onBackgroundError: (what, err) =>
      logger.error(
        { err },
        what === 'audit' ? 'audit checkpoint signing failed' : 'reading the CRM user directory failed',
      ),
    onSequencerChange: (leading) =>
      logger.info(
        leading ? 'audit sequencer: this node now integrates the log' : 'audit sequencer: role given up',
      ),
  }).catch(async (error: unknown) => {
    await reserved?.release();
    throw error;
  });
  const { store, secrets, catalog, fieldKeys } = modules;
  const closers: Array<() => Promise<void>> = [() => modules.close(), async () => reserved?.release()];
  try {
    // Redis (scale-out): shared limits, revocation notices, DPoP replay; loaded only when configured.
    const redis = config.redis.url
      ? await (await import('./redis.js')).connectRedis(config, logger)
      : undefined;
    if (redis) closers.unshift(() => redis.close());
    // Every call to an address someone configured (hooks, alert webhook) goes through this one guard.
    const egress = createEgress({
      allowPrivateDestinations: config.net.allowPrivateDestinations,
      ...options.egress,
    });
    closers.unshift(() => egress.close());
    // One store for the gateway's limits and the token endpoint's: detection's throttle of a network
    // at the token endpoint lives among the limits' throttles.
    const limitsBackend = redis?.limits ?? options.cluster?.limits ?? memoryBackend();
    // Fails closed: a node whose key service cannot wrap and unwrap now does not start.
    if (modules.keysWarning) logger.warn(modules.keysWarning);
    logger.info(`keys: ${await requireKeyService(modules.keys)}`);
    const connected = await modules.crm();
    closers.unshift(() => connected.close());
    const crm = options.wrapConnector ? options.wrapConnector(connected.connector) : connected.connector;
    if (config.demo) {
      // Once per database: on PostgreSQL the first node to get here seeds, the others find it done.
      await store.exclusive('demo-seed', () =>
        prepareDemo(store, config, fieldKeys, catalog.ensureDemoApps, logger, options.onSeedProgress),
      );
    }
    if (config.crm.kind === 'embedded') {
      // Values stored before field encryption, or under a key being rotated, move to the current key
      // before anything is served: an equality filter finds a row only through its blind index.
      await store.exclusive('crm-field-encryption', () => encryptCrmFields(store, fieldKeys, logger));
    }
    await writeMeta(store.db, {
      mode: config.demo ? 'demo' : 'production',
      idp_issuer: devIdpIssuer,
      public_url: url,
    });

    const audit: AuditLog = await modules.audit();
    closers.unshift(() => audit.close());
    let devIdp: DevIdp | undefined;
    if (config.demo) {
      const idp = await createDevIdp({ config, secrets, issuer: devIdpIssuer });
      if (idp.notice) logger.info(idp.notice);
      devIdp = idp;
      closers.unshift(async () => devIdp?.close());
    }
    const broker = await createBroker({
      config,
      secrets,
      db: store.db,
      audit,
      issuer: url,
      lookupClient: async (clientId) => clientInfoFromApp(await catalog.findAppByClientId(clientId)),
      revocationFanout: bothFanouts(redis?.revocationFanout, options.cluster?.revocationFanout),
      dpopReplay: redis?.dpopReplay,
      limitTokenRequests: createEndpointLimiter({
        name: tokenEndpointLimiter,
        backend: limitsBackend,
        now: () => clock.now(),
        ...config.broker.tokenRequestLimits,
      }),
    });
    closers.unshift(async () => broker.close());

    const metrics = createMetrics();
    redis?.registerMetrics(metrics.registry);
    const appOf = new WeakMap<FastifyRequest, string>();
    // Policy, playbook and key changes come from the store (any node or the CLI), never the data dir.
    let policyProblem: string | undefined;
    const control = await startControl({
      db: store.db,
      config,
      logger,
      reloadKeys: () => broker.reloadKeys(),
      onPolicyProblem(problem, inForce) {
        policyProblem = problem;
        if (problem === undefined) {
          logger.info({ policy_version: inForce }, 'policy library reloaded');
          return;
        }
        logger.error({ problem }, 'active policy library could not be loaded; keeping the previous one');
        audit
          .append(policyProblemEvent(problem, inForce))
          .catch((err: unknown) => logger.error({ err }, 'recording the policy library problem failed'));
      },
    });
    closers.unshift(() => control.snapshot.close());
    const policies = { current: () => control.snapshot.current().policy, problem: () => policyProblem };
    const httpOptions = {
      logger,
      publicUrl: url,
      bodyLimit: config.server.bodyLimitBytes,
      maxUrlBytes: config.server.maxUrlBytes,
      maxInFlight: config.server.maxInFlight,
      requestTimeoutMs: config.server.requestTimeoutMs,
      callerOf,
      recordRefusal: async (refusal: Refusal) => {
        await audit.append(refusalEvent({ ...refusal, policyVersion: policies.current().version }));
      },
    };
    const tls = config.server.tls;
    const app = createHttpServer({
      ...httpOptions,
      trustedProxies: config.server.trustedProxies,
      ...(tls && { https: tlsContextOptions(tls) }),
    });
    refuseWhileStale(app, control.snapshot.stale);
    // Callback form, like http.ts's per-request hooks: an async hook costs a promise per request.
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const labels = {
        route,
        method: request.method,
        status: String(reply.statusCode),
        app: appOf.get(request) ?? '',
      };
      metrics.requests.inc(labels);
      metrics.latency.observe({ route }, reply.elapsedTime / 1000);
      done();
    });
    await app.register(formbody);
    registerProblemPages(app, url);
    devIdp?.mount(app);
    registerBrokerRoutes(app, broker, { networkOf });
    const decisions = openDecisionLog(store.db, {
      retentionDays: config.policy.decisionRetentionDays,
      onError: (err, dropped) => logger.error({ err, dropped }, 'recording policy decisions failed'),
    });
    closers.unshift(() => decisions.close());
    const pipeline = {
      audit,
      limits: createLimits(limitsConfig(config), { backend: limitsBackend, now: () => clock.now() }),
      policy: cedarRuntimePolicy(policies.current, {
        describe: (object) => crm.describe(object),
        caches: modules.policyCaches,
        log: decisions,
        residency: {
          regionOf: (territory: string) => regionOf(config.compliance.residency, territory),
          conditions: (where: readonly RowCondition[]) =>
            residencyConditions(config.compliance.residency, regionField, where),
        },
      }),
      authenticateCaller: (request: FastifyRequest) => authenticateBrokerCaller(broker, request),
      ...(connected.connector.identity && {
        crmUser: connected.connector.identity.bind(connected.connector),
      }),
      appPlan: approvedPlans(catalog),
      residencyOf: (plan: ApprovedPlan | undefined) =>
        appResidency(config.compliance.residency, plan?.residency),
      transferOf,
      onDecision(request: FastifyRequest, outcome: string, appId: string) {
        appOf.set(request, appId);
        metrics.decisions.inc({ outcome, app: appId });
      },
      now: () => new Date(clock.now()),
    };
    const cursorKey =
      (await secrets.get(cursorKeyName)) ?? (await secrets.putIfAbsent(cursorKeyName, randomBytes(32)));
    registerGatewayRoutes(app, {
      ...pipeline,
      config,
      crm,
      cursorKey,
      writeKeys: storedWriteKeys(store.db),
      serverUrl: url,
      lookupApp: async (appId) => {
        const found = await catalog.findApp(appId);
        return found?.status === 'approved' ? { scopes: found.scopes, clientId: found.clientId } : undefined;
      },
    });
    // Records read per app and data class, counted from the audit trail as it is integrated, so the
    // dashboards count exactly what was audited (on PostgreSQL: on the node that sequences the log).
    const classesOf = classesOfFields(crm);
    const stopCountingReads = audit.onAppended(({ event }) => {
      const read = recordsReadBy(event, classesOf);
      if (read) metrics.recordsRead.inc({ app: read.app, data_class: read.data_class }, read.records);
    });
    closers.unshift(async () => stopCountingReads());
    const revokeTokens = (
      target: { appId?: string; userId?: string },
      how: { reason: string; actor: string; incident?: string; permanent?: boolean },
    ) => broker.revokeAll({ ...target, ...how });
    const tableSizes = async () =>
      Object.fromEntries(
        await Promise.all(crmObjects.map(async (object) => [object, await crm.count(object)] as const)),
      );
    const lifecycle = createLifecycle({
      db: store.db,
      config,
      egress,
      policies: policies.current,
      audit,
      revokeTokens,
      tableSizes,
    });
    const stopUpkeep = startCatalogUpkeep({
      lifecycle,
      db: store.db,
      log: audit,
      onError: (err) => logger.error({ err }, 'catalog upkeep failed'),
    });
    closers.unshift(async () => stopUpkeep());
    const adminApps: AdminDeps['apps'] = {
      lifecycle,
      secrets,
      dataDir: config.dataDir,
      revokeTokens,
      refreshUsage: () => refreshUsage(store.db, audit),
      fieldsets: config.scopes,
      // A leaver is named by e-mail: their grants are found by it, as revocation finds them.
      grantsOf: (email) => listUserGrants(store.db, { sub: email, email }, Math.floor(Date.now() / 1000)),
    };
    const adminPolicies: AdminDeps['policies'] = {
      library: policies.current,
      versions: control.versions,
      decisions,
      fieldsets: config.scopes,
      consentPurposes: config.gateway.consent.purposes,
    };
    // Detection streams the audit log and contains through the limits, the broker and the catalog.
    const detection = await startDetection({
      // Detection runs once per cluster of workers: in the first.
      config:
        options.cluster && !options.cluster.first
          ? { ...config, detect: { ...config.detect, enabled: false } }
          : config,
      egress,
      db: store.db,
      audit,
      limits: pipeline.limits,
      revokeTokens,
      lifecycle,
      logger,
      registry: metrics.registry,
      clock,
      playbook: control.playbook,
    });
    closers.unshift(() => detection.close());
    const adminConsole: AdminDeps['console'] = {
      grantsOf: (user) => listUserGrants(store.db, user, Math.floor(Date.now() / 1000)),
      revokeGrant: (appId, user, how) => revokeTokens({ appId, userId: user }, how),
      findApp: async (id) => {
        const found = await catalog.findApp(id);
        const purpose = found?.manifest.purpose;
        return (
          found && {
            name: found.name,
            purpose: typeof purpose === 'string' ? purpose : undefined,
            status: found.status,
          }
        );
      },
      judge: async (manifest) =>
        judgeManifest(policies.current(), manifest, {
          fieldsets: config.scopes,
          consentPurposes: config.gateway.consent.purposes,
          tableSizes: await tableSizes(),
        }),
      fieldsets: config.scopes,
      consentPurposes: config.gateway.consent.purposes,
    };
    await registerConsole(app);
    const adminRunbooks: AdminDeps['runbooks'] = {
      findApp: (id) => catalog.findApp(id),
      history: (id) => catalog.history(id),
      incidents: async (appId) => (await detection.desk.list({ app_id: appId, limit: 100 })).records,
      fieldsets: config.scopes,
      fieldMeta: (object) =>
        new Map(crm.describe(object as CrmObject).fields.map((f) => [f.name, f] as const)),
      residency: config.compliance.residency,
    };
    const compliance = startCompliance({
      app,
      pipeline,
      config,
      db: store.db,
      audit,
      crm,
      secrets,
      catalog,
      logger,
    });
    closers.unshift(async () => compliance.stop());
    const readinessChecks: ReadinessCheck[] = [
      ...dependencyChecks({ store, idpIssuer, redis }),
      {
        // Tokens are refused (503) while the broker's revocation list is unknown or stale.
        name: 'revocations',
        run: async () => {
          const status = broker.revocationStatus();
          if (!status.ok) throw new Error(status.detail);
          return status.detail;
        },
      },
      {
        // Requests need the log to take their events, and CRM data needs it intact.
        name: 'audit',
        run: async () => {
          const integrity = audit.integrity();
          if (!integrity.intact) throw new Error(`the audit log is damaged: ${integrity.problem}`);
          const failure = audit.lastAppendFailure();
          if (failure) throw new Error(`the audit log cannot take events: ${failure}`);
        },
      },
      {
        name: 'policy',
        run: async () => {
          const problem = policies.problem();
          const version = policies.current().version;
          return problem ? { degraded: problem } : version;
        },
      },
      {
        // Policy, playbook and keys as the store has them, confirmed within control.maxStalenessMs.
        name: 'control',
        run: async () => {
          const stale = control.snapshot.stale();
          if (stale) throw new Error(stale);
          return `revision ${control.snapshot.revision}; playbook ${control.playbook.version}`;
        },
      },
      {
        // The key service: the checkpoint signing key must open (a damaged key file, a wrong master key).
        name: 'keys',
        run: async () => {
          await auditVerifierKey(secrets, auditOrigin);
          return modules.keys.check();
        },
      },
    ];
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      const report = await checkReadiness(readinessChecks);
      return reply.code(report.ready ? 200 : 503).send(report);
    });
    const metricsPort = config.server.metricsPort;
    registerAdminRoutes(app, {
      pipeline,
      apps: adminApps,
      policies: adminPolicies,
      incidents: detection.desk,
      keys: broker,
      console: adminConsole,
      runbooks: adminRunbooks,
      dsr: compliance,
      ...(metricsPort === undefined && { metrics: metrics.registry }),
    });

    await reserved?.release();
    await app.listen({ host: config.server.host, port, backlog: config.server.backlog });
    app.server.maxConnections = config.server.maxConnections;
    if (tls) {
      const stopReloading = reloadTlsOnChange(app.server as unknown as TlsServer, tls, (err) => {
        if (err)
          logger.error({ err }, 'TLS certificate files changed but do not load; keeping the previous ones');
        else logger.info('TLS certificate reloaded');
      });
      closers.unshift(async () => stopReloading());
    }
    closers.unshift(() => drain(app, config.server.shutdownGraceMs));
    let metricsUrl: string | undefined;
    if (metricsPort !== undefined) {
      const scrape = createHttpServer({ ...httpOptions, bodyLimit: 1024 });
      serveMetricsOnly(scrape, metrics.registry);
      const address = await scrape.listen({ host: config.server.host, port: metricsPort });
      closers.unshift(() => scrape.close());
      metricsUrl = `${address}/metrics`;
    }
    return {
      url,
      app,
      config,
      ...(metricsUrl !== undefined && { metricsUrl }),
      detectionIdle: detection.idle,
      ...(connected.vendorUrl !== undefined && { crmVendorUrl: connected.vendorUrl }),
      close: () => closeAll(closers.splice(0), logger),
    };
  } catch (error) {
    await closeAll(closers, logger);
    throw error;
  }
}

/** The limits configuration: each key from config when set there, else the limits module's default. */
function limitsConfig(config: Config): LimitsConfig {
  const set = config.limits;
  const defined = <T extends object>(value: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    perApp: set.perApp ?? defaultLimitsConfig.perApp,
    perUser: set.perUser ?? defaultLimitsConfig.perUser,
    global: set.global ?? defaultLimitsConfig.global,
    dailyQuotaPerApp: set.dailyQuotaPerApp ?? defaultLimitsConfig.dailyQuotaPerApp,
    bulkExport: { ...defaultLimitsConfig.bulkExport, ...defined(set.bulkExport) },
    breaker: { ...defaultLimitsConfig.breaker, ...defined(set.breaker) },
  };
}

/**
 * The approved constraints and consent purpose of each app, as the limits and the gateway take them,
 * cached for a second: a new approval or plan holds within a second, and a request costs no catalog read.
 */
function approvedPlans(catalog: Catalog): (appId: string) => Promise<ApprovedPlan | undefined> {
  const cache = new Map<string, { plan: Promise<ApprovedPlan | undefined>; until: number }>();
  const planOf = async (appId: string): Promise<ApprovedPlan | undefined> => {
    const app = await catalog.findApp(appId);
    const constraints = app?.constraints;
    const consentPurpose = app && purposeInForce(app);
    const reads = app && declaredReads(app.manifest);
    const residency = app && declaredResidency(app.manifest);
    const plan =
      constraints || consentPurpose !== undefined || reads || residency
        ? {
            ...(constraints && {
              dailyQuota: constraints.daily_quota,
              requestsPerMinute: constraints.requests_per_minute,
            }),
            ...(consentPurpose !== undefined && { consentPurpose }),
            ...(reads && { reads }),
            ...(residency && { residency }),
          }
        : undefined;
    return plan;
  };
  return (appId) => {
    const now = Date.now();
    const hit = cache.get(appId);
    if (hit && hit.until > now) return hit.plan;
    // One read per expiry, shared by the requests that arrive while it runs (not one each).
    const plan = planOf(appId);
    const entry = { plan, until: now + 1000 };
    if (cache.size > 10_000) cache.clear();
    cache.set(appId, entry);
    plan.catch(() => {
      if (cache.get(appId) === entry) cache.delete(appId);
    });
    return plan;
  };
}

/**
 * Stops accepting, lets requests in flight finish, and at the grace deadline closes whatever is left
 * (a client that never finishes sending its request, a slow reader), so the closers after it — the
 * final checkpoint, the flushes — always run.
 */
async function drain(app: FastifyInstance, graceMs: number): Promise<void> {
  const deadline = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(deadline);
  }
}

/** The residency a plan declares (validated at registration); none when it declares none. */
function declaredResidency(manifest: Readonly<Record<string, unknown>>): ApprovedPlan['residency'] {
  const declared = manifest.residency as { region?: unknown; transfers?: unknown } | undefined;
  if (typeof declared?.region !== 'string') return undefined;
  const transfers = Array.isArray(declared.transfers)
    ? declared.transfers.filter((t): t is string => typeof t === 'string')
    : [];
  return { region: declared.region, transfers };
}

/** The read volume a plan declares (its export budgets); none when it states no expected users. */
function declaredReads(manifest: Readonly<Record<string, unknown>>): ApprovedPlan['reads'] {
  const users = manifest.expected_users;
  if (!Number.isSafeInteger(users) || (users as number) < 1) return undefined;
  const declared = manifest.expected_reads;
  const expectedReads: Record<string, number> = {};
  if (typeof declared === 'object' && declared !== null) {
    for (const [object, reads] of Object.entries(declared)) {
      if (Number.isSafeInteger(reads) && (reads as number) >= 0) expectedReads[object] = reads as number;
    }
  }
  return { expectedUsers: users as number, expectedReads };
}

/** Runs every closer even when one fails (the store must close after a failed final checkpoint). */
async function closeAll(closers: ReadonlyArray<() => Promise<void>>, logger: Logger): Promise<void> {
  let first: unknown;
  for (const close of closers) {
    try {
      await close();
    } catch (error) {
      logger.error({ err: error }, 'shutdown step failed');
      first ??= error;
    }
  }
  if (first) throw first;
}

async function encryptCrmFields(store: Store, fieldKeys: FieldKeys, logger: Logger): Promise<void> {
  const reports = await reencryptFields(store.db, fieldKeys, {
    onProgress: (p) =>
      logger.info({ ...p }, `encrypting ${p.object}.${p.field} at rest: ${p.done} of ${p.total}`),
  });
  for (const report of reports) {
    if (report.sealed + report.reencrypted + report.retired.length > 0) {
      logger.info(
        { ...report },
        `${report.object}.${report.field} encrypted at rest under key v${report.version}`,
      );
    }
  }
}

async function prepareDemo(
  store: Store,
  config: Config,
  fieldKeys: FieldKeys,
  ensureDemoApps: () => Promise<void>,
  logger: Logger,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  await ensureDemoApps();
  if (!(await isCrmEmpty(store.db))) return;
  const result = await seedCrm(store.db, {
    owners: demoSeedOwners(config),
    onProgress,
    ...(config.crm.kind === 'embedded' && { fieldKeys }),
  });
  logger.info({ ...result }, 'seeded the embedded CRM with synthetic data');
}

/**
 * Port 0 asks for any free port; tokens and the IdP issuer need the real one before routes exist. The
 * port stays bound until `release`, just before the server listens on it: released at once, a listener
 * started meanwhile (the demo CRM's fake, another process) could be handed the same port.
 */
export function reservePort(host: string): Promise<{ port: number; release(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port: 0 }, () => {
      const address = probe.address();
      if (typeof address !== 'object' || address === null) return reject(new Error('no port'));
      // A start that fails before listening must not be kept alive by its reservation.
      probe.unref();
      const release = () =>
        new Promise<void>((done) => (probe.listening ? probe.close(() => done()) : done()));
      resolve({ port: address.port, release });
    });
  });
}

/** A free port, released at once: for `serve --workers`, whose workers bind it through the primary. */
export async function freePort(host: string): Promise<number> {
  const { port, release } = await reservePort(host);
  await release();
  return port;
}

/** The audit event of a policy library that could not be put in force (a lost pointer, a bad publish). */
function policyProblemEvent(problem: string, inForce: string): AuditEvent {
  return {
    timestamp: new Date().toISOString(),
    actor_id: 'gatehouse',
    actor_role: 'system',
    app_id: 'gatehouse',
    action: 'policy.load_failed',
    resource_type: 'policy',
    resource_id: inForce,
    scope: '',
    request_id: randomUUID(),
    trace_id: '',
    outcome: 'error',
    reason: problem.slice(0, 500),
    policy_version: inForce,
  };
}
