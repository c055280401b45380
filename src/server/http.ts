import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { authenticateChallenge } from '../broker/index.js';
import { GatehouseError, TokenError, toProblem, type ErrorCode } from '../errors/index.js';

/** Fastify's own client-error codes, mapped onto Gatehouse codes so every error has one shape. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_VALIDATION: 'INVALID_INPUT',
};

export function createHttpServer(options: {
  logger: Logger;
  bodyLimit: number;
  /** server.trustedProxies: request.ip is the right-most X-Forwarded-For hop not among them. */
  trustedProxies?: readonly string[];
}): FastifyInstance {
  const trusted = options.trustedProxies ?? [];
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    // Without trusted proxies the socket's peer is the client: an X-Forwarded-For from anyone else is a
    // claim the client makes about itself, and rules on networks must not believe it.
    trustProxy: trusted.length > 0 ? [...trusted] : false,
    // Our own ids only: a caller-chosen id could collide with another request's audit trail.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
  });

  app.addHook('onRequest', async (request, reply) => {
    // nosniff everywhere: no answer of ours, error or data, may be read by a browser as another type.
    reply.header('x-request-id', request.id).header('x-content-type-options', 'nosniff');
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
    else request.log.info({ code: problem.code }, 'request refused');
    const retryAfter = known instanceof GatehouseError ? known.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
    else if (problem.status === 503) reply.header('retry-after', '5');
    if (known instanceof TokenError) reply.header('www-authenticate', authenticateChallenge(known));
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
