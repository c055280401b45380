import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { objectFromPlural } from '../crm/index.js';
import { DependencyUnavailable } from '../errors/index.js';
import { breakerConnector } from './connector.js';
import { bulkGuardStage } from './guard.js';
import { registerOpenApiRoute, type OpenApiDeps } from './openapi.js';
import {
  authenticateCaller as authenticate,
  governed,
  limitCaller as limit,
  recordRefusalsBeforeHandler,
  runStages,
  type Stage,
} from './pipeline.js';
import {
  answerOne,
  answerPage,
  authorizeNew,
  authorizeStored,
  checkShape,
  consentedContact,
  createRecord,
  decideList,
  decideRead,
  deleteRecord,
  fetchOne,
  fetchPage,
  guardRecords as guard,
  idempotent,
  nameResource,
  parseAggregate,
  parseQuery,
  pinVersion,
  planDeleting,
  planWriting,
  protectOne,
  recordWriteIntent,
  requireVersion,
  resolveObject,
  runAggregation,
  screenCreate,
  screenUpdate,
  updateRecord,
  type GatewayContext,
  type GatewayDeps,
  type GatewayRuntime,
} from './request-stages.js';
import { crmRouteShapes, declareShapes } from './shapes.js';

export type { GatewayDeps } from './request-stages.js';

type Pipeline = readonly Stage<GatewayContext>[];

/*
 * The data plane's pipelines, each in the order its stages run over one request context
 * (request-stages.ts; DESIGN.md "One request through the gateway"). governed() records every
 * request's audit event, allowed or refused, before anything is sent.
 *
 *   authenticate  token → principal, app plan (once), purpose, residency      sets principal, appPlan
 *   limit         rate buckets and quota; RateLimit headers                    reads principal, appPlan
 *   resolveObject the CRM object of the URL                                    sets object
 *   checkShape    the route's declared shapes, after the stage parsing the same input
 *   decide*       the one Cedar ask of the request → row filter, fields, view  sets ask, plan, view
 *   fetch*        the CRM under that row filter                                sets stored / records
 *   protect*      consent, masks, outgoing DLP                                 sets records, protect
 *   guard         export budgets of user and app                               reads records, appPlan
 *   answer*       the body, ETag and what the event says                       sets answer
 */

/** GET /crm/v1/:plural/:id */
const readPipeline: Pipeline = [
  nameResource,
  authenticate,
  limit,
  resolveObject,
  parseQuery(['fields']),
  checkShape,
  decideRead,
  fetchOne,
  protectOne,
  guard,
  answerOne,
];

/** GET /crm/v1/:plural */
const listPipeline: Pipeline = [
  authenticate,
  limit,
  resolveObject,
  parseQuery(['fields', 'filter', 'limit', 'cursor']),
  checkShape,
  decideList,
  fetchPage,
  guard,
  answerPage,
];

/** GET /crm/v1/:plural/aggregate */
const aggregatePipeline: Pipeline = [
  authenticate,
  limit,
  resolveObject,
  parseAggregate,
  checkShape,
  runAggregation,
];

/** POST /crm/v1/:plural: consent first, so a contact without it reads exactly as one the caller cannot see. */
const createPipeline: Pipeline = [
  authenticate,
  limit,
  resolveObject,
  planWriting('create'),
  checkShape,
  idempotent([screenCreate, consentedContact, authorizeNew, recordWriteIntent, createRecord]),
];

/** PATCH /crm/v1/:plural/:id */
const updatePipeline: Pipeline = [
  nameResource,
  authenticate,
  limit,
  resolveObject,
  planWriting('update'),
  checkShape,
  idempotent([screenUpdate, consentedContact, authorizeStored, pinVersion, recordWriteIntent, updateRecord]),
];

/** DELETE /crm/v1/:plural/:id */
const deletePipeline: Pipeline = [
  nameResource,
  authenticate,
  limit,
  resolveObject,
  planDeleting,
  checkShape,
  idempotent([requireVersion, authorizeStored, pinVersion, recordWriteIntent, deleteRecord]),
];

/**
 * The CRM data plane (CONTRACT.md "Gateway"): which pipeline each route runs, each route with its
 * declared shapes (shapes.ts), and /openapi.json generated from them (openapi.ts). A request refused
 * before its handler ran (a body too large, not JSON, malformed) is recorded by this scope's error handler.
 */
export function registerGatewayRoutes(app: FastifyInstance, deps: GatewayDeps & OpenApiDeps): void {
  void app.register(async (gateway) => {
    declareShapes(gateway);
    await registerOpenApiRoute(gateway, deps);
    registerCrmRoutes(gateway, deps);
  });
}

/** The CRM routes, in their own scope of `gateway` (whose shapes and document they join). */
export function registerCrmRoutes(gateway: FastifyInstance, deps: GatewayDeps): void {
  // Every CRM call goes through the connector's breaker: a failing CRM is refused fast (503).
  const crm = breakerConnector(deps.crm, deps.limits.breaker(deps.crm.name));
  const runtime: GatewayRuntime = {
    ...deps,
    crm,
    guard: bulkGuardStage(crm, deps.limits, deps.config.gateway.tableSizeCacheSeconds),
  };
  const serve =
    (action: string, pipeline: Pipeline, status = 200) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const answer = await governed(runtime, request, reply, action, (trail) =>
        runStages(pipeline, { deps: runtime, request, trail }),
      );
      if (status === 200) return answer;
      return reply.code(status).send(status === 204 ? undefined : answer);
    };
  const shapes = crmRouteShapes(deps.config.gateway.maxPageSize);

  void gateway.register(async (scope) => {
    // CRM records never rest in a browser or proxy cache, whoever asked for them.
    scope.addHook('onRequest', (_request, reply, done) => {
      reply.header('cache-control', 'no-store');
      done();
    });
    recordRefusalsBeforeHandler(scope, deps, (request) => ({
      action: actionOf(request),
      resourceType: resourceTypeOf(request),
    }));
    // No CRM data is served over a log that no longer matches its signed checkpoints: what is read now
    // could not be shown to have been recorded. The refusal itself is recorded (above).
    scope.addHook('onRequest', (_request, _reply, done) => {
      const integrity = deps.audit.integrity();
      if (integrity.intact) return done();
      done(
        new DependencyUnavailable(
          'AUDIT_LOG_DAMAGED',
          `the audit log is damaged (${integrity.problem}); an operator must restore it (gatehouse audit verify names the first bad index)`,
        ),
      );
    });

    const path = '/crm/v1/:plural';
    const item = `${path}/:id`;
    scope.get(`${path}/aggregate`, { schema: shapes.aggregate }, serve('crm.aggregate', aggregatePipeline));
    scope.get(item, { schema: shapes.read }, serve('crm.read', readPipeline));
    scope.get(path, { schema: shapes.list }, serve('crm.list', listPipeline));
    scope.post(path, { schema: shapes.create }, serve('crm.create', createPipeline, 201));
    scope.patch(item, { schema: shapes.update }, serve('crm.update', updatePipeline));
    scope.delete(item, { schema: shapes.delete }, serve('crm.delete', deletePipeline, 204));
  });
}

const actions: Readonly<Record<string, string>> = {
  GET: 'crm.read',
  POST: 'crm.create',
  PATCH: 'crm.update',
  DELETE: 'crm.delete',
};

function actionOf(request: FastifyRequest): string {
  return actions[request.method] ?? 'crm.request';
}

function resourceTypeOf(request: FastifyRequest): string {
  const plural = (request.params as { plural?: string } | undefined)?.plural ?? '';
  return objectFromPlural(plural) ?? plural.slice(0, 64);
}
