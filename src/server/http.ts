import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Logger } from 'pino';
import { GatehouseError, toProblem, type ErrorCode } from '../errors/index.js';

/** Fastify's own client-error codes, mapped onto Gatehouse codes so every error has one shape. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_VALIDATION: 'INVALID_INPUT',
};

export function createHttpServer(options: { logger: Logger; bodyLimit: number }): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    // Our own ids only: a caller-chosen id could collide with another request's audit trail.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
    // One line per request, written when it is answered (requestLine below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const refusals = new WeakMap<object, Refusal>();
  app.addHook('onResponse', async (request, reply) => {
    const { app: appId, user } = (request.log as unknown as Logger).bindings() as {
      app?: string;
      user?: string;
    };
    const line = requestLine({
      method: request.method,
      path: request.url.split('?')[0] ?? '',
      status: reply.statusCode,
      ms: reply.elapsedTime,
      app: appId,
      user,
      refusal: refusals.get(request),
    });
    request.log[line.level](line.fields, line.message);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // Close waits for every connection. One still serving a request when close began would stay open
  // after answering (keep-alive) until it timed out, holding shutdown past its grace period and so
  // losing the final checkpoint: answers given while closing end their connections.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = asGatehouseError(error);
    const problem = toProblem(known, request.id);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    refusals.set(request, { code: problem.code, incident: incidentOf(problem) });
    const retryAfter = known instanceof GatehouseError ? known.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
    else if (problem.status === 503) reply.header('retry-after', '5');
    return reply
      .code(problem.status)
      .type('application/problem+json')
      .header('cache-control', 'no-store')
      .send(problem);
  });

  app.setNotFoundHandler((request, reply) => {
    const problem = toProblem(
      new GatehouseError('ROUTE_NOT_FOUND', 'no such endpoint; see the README for the API'),
      request.id,
    );
    return reply.code(404).type('application/problem+json').send(problem);
  });
  return app;
}

function asGatehouseError(error: FastifyError): unknown {
  if (error instanceof GatehouseError) return error;
  const code = error.code ? fastifyCodes[error.code] : undefined;
  if (code) return new GatehouseError(code, error.message, { cause: error });
  if (error.statusCode === 405)
    return new GatehouseError('METHOD_NOT_ALLOWED', 'method not allowed on this endpoint');
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new GatehouseError('BAD_REQUEST', 'the request could not be read', { cause: error });
  }
  return error;
}

interface Refusal {
  code: string;
  incident?: string;
}

/** The incident a containment refusal names, however the problem carries it. */
function incidentOf(problem: object): string | undefined {
  const { incident_id: incidentId, incident } = problem as { incident_id?: unknown; incident?: unknown };
  const id = incidentId ?? incident;
  return typeof id === 'string' ? id : undefined;
}

/**
 * The log line of one answered request: method, path, status, app, user and milliseconds. A token refused
 * because detection contained its app or user is a warning that says so and what to do.
 */
export function requestLine(request: {
  method: string;
  path: string;
  status: number;
  ms: number;
  app?: string;
  user?: string;
  refusal?: Refusal;
}): { level: 'info' | 'warn'; fields: Record<string, unknown>; message: string } {
  const { method, path, status, app, user, refusal } = request;
  const ms = Math.round(request.ms);
  const who = [app && `app=${app}`, user && `user=${user}`].filter(Boolean).join(' ');
  const base = `${method} ${path} ${status} ${ms}ms${who ? ` ${who}` : ''}${refusal ? ` ${refusal.code}` : ''}`;
  const fields = { method, path, status, ms, code: refusal?.code, incident: refusal?.incident };
  if (refusal?.code !== 'TOKEN_REVOKED') return { level: 'info', fields, message: base };
  const why = refusal.incident
    ? `contained by incident ${refusal.incident}: see npx gatehouse incident show ${refusal.incident}`
    : 'revoked (by containment or an operator): see npx gatehouse incident list';
  return { level: 'warn', fields, message: `${base} - token ${why}` };
}
