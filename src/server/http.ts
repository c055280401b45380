import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { authenticateChallenge } from '../broker/index.js';
import {
  GatehouseError,
  InputError,
  TokenError,
  toProblem,
  type ErrorCode,
  type TokenRefusalReason,
} from '../errors/index.js';
import { hstsHeader } from './tls.js';

/** Fastify's own client-error codes, mapped onto Gatehouse codes so every error has one shape. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_VALIDATION: 'INVALID_INPUT',
};

const fastifyMessages: Partial<Record<ErrorCode, string>> = {
  PAYLOAD_TOO_LARGE: 'the request body is larger than this server accepts',
  UNSUPPORTED_MEDIA_TYPE: 'this endpoint does not accept that content type; send application/json',
  BAD_REQUEST: 'the request could not be read',
  INVALID_INPUT: 'the body is not valid JSON',
};

/** A request refused before any route ran: what the audit trail records of it (never the input). */
export interface Refusal {
  requestId: string;
  code: ErrorCode;
  /** The peer address, when the socket still has one. */
  ip: string | undefined;
}

export interface HttpServerOptions {
  logger: Logger;
  /** This node's public URL: every problem's `type` is its code's page under it (`/problems/<slug>`). */
  publicUrl: string;
  bodyLimit: number;
  /** Longest request target accepted (414 above it). */
  maxUrlBytes: number;
  /** Requests served at once; more are shed with 503 + Retry-After instead of queueing. */
  maxInFlight: number;
  /** A request whose headers and body have not arrived by then gets 408 and its connection closed. */
  requestTimeoutMs: number;
  /** Records a refusal made before any route's pipeline (bad URL, oversized headers, load shedding). */
  recordRefusal(refusal: Refusal): Promise<void>;
  /** server.trustedProxies: request.ip is the right-most X-Forwarded-For hop not among them. */
  trustedProxies?: readonly string[];
  /** server.tls: serve HTTPS with this context, and send HSTS on every answer. */
  https?: SecureContextOptions;
  /** The app and user a request was for, once known (gateway callerOf): its log lines name them. */
  callerOf?: (request: FastifyRequest) => { appId: string; userId: string } | undefined;
}

/** Longest path parameter (an id) the router matches; every Gatehouse id is far shorter. */
const maxParamLength = 100;

/** Health and metrics answer whatever the load, so orchestrators see a busy node as alive. */
const healthPaths = new Set(['/healthz', '/readyz', '/metrics']);

/** Health, metrics and discovery documents (cheap; /readyz fetches the IdP's) are never shed. */
function exemptFromShedding(path: string): boolean {
  return healthPaths.has(path) || path.includes('/.well-known/');
}

/** Headers Node keeps only the first of: a second one would go unseen, so the request is refused. */
const singleHeaders = new Set(['authorization', 'proxy-authorization', 'dpop', 'content-type', 'host']);

/** JSON bodies must be UTF-8: a decoder that replaces bad bytes would store what the caller never sent. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const { recordRefusal, logger, publicUrl } = options;
  const trusted = options.trustedProxies ?? [];
  const refuse = (refusal: Refusal) =>
    recordRefusal(refusal).catch((err: unknown) =>
      logger.error({ err, request_id: refusal.requestId }, 'recording a refused request failed'),
    );
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    // Without trusted proxies the socket's peer is the client: an X-Forwarded-For from anyone else is a
    // claim the client makes about itself, and rules on networks must not believe it.
    trustProxy: trusted.length > 0 ? [...trusted] : false,
    // Our own ids only: a caller-chosen id could collide with another request's audit trail.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
    routerOptions: { maxParamLength },
    requestTimeout: options.requestTimeoutMs,
    // Router-level refusals (bad percent-encoding) answer like every other error, and are recorded.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      const refused = routerRefusal(error.code, request.url, options.maxUrlBytes);
      // Recorded before the answer, like every other refusal.
      void refuse({ requestId: request.id, code: refused.code, ip: peerOf(request) }).then(() =>
        sendProblem(request, reply, refused, publicUrl),
      );
    },
    // Refusals before a request exists (oversized headers, a malformed request line, a timeout).
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      if (error.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const code: ErrorCode =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? 'HEADERS_TOO_LARGE'
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 'REQUEST_TIMEOUT'
            : 'BAD_REQUEST';
      const requestId = randomUUID();
      const answer = rawProblem(
        new GatehouseError(code, clientErrorDetail[code] ?? 'the request could not be read'),
        requestId,
        publicUrl,
      );
      void refuse({ requestId, code, ip: socket.remoteAddress }).then(() => {
        if (socket.writable) socket.end(answer);
        else socket.destroy();
      });
    },
    // One line per request, written when it is answered (requestLine below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    ...(options.https && { https: options.https }),
  }) as unknown as FastifyInstance;
  // The hooks below that run on every request take Fastify's callback form: an async hook costs each
  // request a promise and a turn of the microtask queue for work that never waits.
  if (options.https) {
    app.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('strict-transport-security', hstsHeader);
      done(null, payload);
    });
  }
  app.addHook('onResponse', (request, reply, done) => {
    const caller = options.callerOf?.(request);
    const line = requestLine({
      method: request.method,
      path: request.url.split('?')[0] ?? '',
      status: reply.statusCode,
      ms: reply.elapsedTime,
      app: caller?.appId,
      user: caller?.userId,
      refusal: refusals.get(request),
    });
    request.log[line.level](line.fields, line.message);
    done();
  });

  app.removeContentTypeParser('application/json');
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = strictUtf8.decode(body as Buffer);
    } catch {
      done(new InputError('the body is not valid UTF-8; send JSON encoded as UTF-8'), undefined);
      return;
    }
    parseJson(request, text, done);
  });

  let inFlight = 0;
  app.addHook('onRequest', (request, reply, done) => {
    // nosniff everywhere: no answer of ours, error or data, may be read by a browser as another type.
    reply.header('x-request-id', request.id).header('x-content-type-options', 'nosniff');
    const refused = screen(request, inFlight, options);
    if (refused) {
      // Recorded before the answer; refuse() never rejects (a failure to record is logged).
      void refuse({ requestId: request.id, code: refused.code, ip: peerOf(request) }).then(() =>
        done(refused),
      );
      return;
    }
    inFlight += 1;
    reply.raw.once('close', () => {
      inFlight -= 1;
    });
    done();
  });

  // Close waits for every connection. One still serving a request when close began would stay open
  // after answering (keep-alive) until it timed out, holding shutdown past its grace period and so
  // losing the final checkpoint: answers given while closing end their connections.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((error: FastifyError, request, reply) =>
    sendProblem(request, reply, error, publicUrl, options.callerOf?.(request)),
  );

  app.setNotFoundHandler(async (request, reply) => {
    const refused = new GatehouseError('ROUTE_NOT_FOUND', 'no such endpoint; see the README for the API');
    await refuse({ requestId: request.id, code: refused.code, ip: peerOf(request) });
    return reply
      .code(404)
      .type('application/problem+json')
      .send(toProblem(refused, { publicUrl, instance: request.id }));
  });
  return app;
}

/** The refusal a request meets before routing, if any: a URL too long, a doubled header, too much load. */
function screen(
  request: FastifyRequest,
  inFlight: number,
  options: Pick<HttpServerOptions, 'maxUrlBytes' | 'maxInFlight'>,
): GatehouseError | undefined {
  if (Buffer.byteLength(request.url) > options.maxUrlBytes) {
    return new GatehouseError('URI_TOO_LONG', `the request URL is longer than ${options.maxUrlBytes} bytes`);
  }
  const doubled = doubledHeader(request.raw.rawHeaders);
  if (doubled) {
    return new GatehouseError('BAD_REQUEST', `send one ${doubled} header, not several`);
  }
  if (inFlight >= options.maxInFlight && !exemptFromShedding(request.url.split('?')[0] ?? '')) {
    return new ShedLoad();
  }
  return undefined;
}

/** What the router's refusal means to the caller: a URL too long, an id too long, or bad percent-encoding. */
function routerRefusal(code: string, url: string, maxUrlBytes: number): GatehouseError {
  if (Buffer.byteLength(url) > maxUrlBytes) {
    return new GatehouseError('URI_TOO_LONG', `the request URL is longer than ${maxUrlBytes} bytes`);
  }
  if (code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new GatehouseError(
      'URI_TOO_LONG',
      `an id in the path is longer than ${maxParamLength} characters`,
    );
  }
  if (code === 'FST_ERR_BAD_URL') {
    return new GatehouseError('BAD_REQUEST', 'the request URL is not valid (bad percent-encoding)');
  }
  return new GatehouseError('BAD_REQUEST', 'the request could not be routed');
}

class ShedLoad extends GatehouseError {
  override readonly retryAfterSeconds = 1;

  constructor() {
    super('OVERLOADED', 'the server is at its request limit; retry after the time in Retry-After');
  }
}

/** The first header named twice among those only one of which may be sent. */
export function doubledHeader(rawHeaders: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    if (!singleHeaders.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** The socket's address is gone once the client hangs up; the refusal is recorded without it. */
function peerOf(request: FastifyRequest): string | undefined {
  return request.raw.socket?.remoteAddress;
}

function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  publicUrl: string,
  caller?: { appId: string; userId: string },
): FastifyReply {
  const known = asGatehouseError(error as FastifyError);
  const problem = toProblem(known, { publicUrl, instance: request.id });
  if (problem.status >= 500) {
    request.log.error({ err: error, app: caller?.appId, user: caller?.userId }, 'request failed');
  }
  refusals.set(request, {
    code: problem.code,
    incident: incidentOf(problem),
    ...(known instanceof TokenError && { reason: known.reason }),
  });
  const retryAfter = known instanceof GatehouseError ? known.retryAfterSeconds : undefined;
  if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  else if (problem.status === 503) reply.header('retry-after', '5');
  if (known instanceof TokenError) reply.header('www-authenticate', authenticateChallenge(known));
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .header('cache-control', 'no-store')
    .send(problem);
}

const clientErrorDetail: Partial<Record<ErrorCode, string>> = {
  HEADERS_TOO_LARGE: 'the request headers (with the URL) are too large; send fewer or shorter headers',
  REQUEST_TIMEOUT: 'the request did not arrive in time; send it again',
};

/** A whole HTTP/1.1 answer for a socket that never became a request (Fastify's handlers cannot run). */
function rawProblem(error: GatehouseError, requestId: string, publicUrl: string): string {
  const problem = toProblem(error, { publicUrl, instance: requestId });
  const body = JSON.stringify(problem);
  return [
    `HTTP/1.1 ${problem.status} ${problem.title}`,
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    'cache-control: no-store',
    'connection: close',
    '',
    body,
  ].join('\r\n');
}

function asGatehouseError(error: FastifyError): unknown {
  if (error instanceof GatehouseError) return error;
  const code = error.code ? fastifyCodes[error.code] : undefined;
  // Fastify's messages can quote the input (a media type); the answer never echoes what was sent.
  if (code)
    return new GatehouseError(code, fastifyMessages[code] ?? 'the request could not be read', {
      cause: error,
    });
  if (error.statusCode === 405)
    return new GatehouseError('METHOD_NOT_ALLOWED', 'method not allowed on this endpoint');
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new GatehouseError('BAD_REQUEST', 'the request could not be read', { cause: error });
  }
  return error;
}

/** What the request log line says of a refused request. */
interface RefusalNote {
  code: string;
  incident?: string;
  /** Why a token was refused (TokenError's reason): a suspended app is not a revoked token. */
  reason?: TokenRefusalReason;
}

/** The refusal each answered request met, for its one log line (requestLine). */
const refusals = new WeakMap<FastifyRequest, RefusalNote>();

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
  refusal?: RefusalNote;
}): { level: 'info' | 'warn'; fields: Record<string, unknown>; message: string } {
  const { method, path, status, app, user, refusal } = request;
  const ms = Math.round(request.ms);
  const who = [app && `app=${app}`, user && `user=${user}`].filter(Boolean).join(' ');
  const base = `${method} ${path} ${status} ${ms}ms${who ? ` ${who}` : ''}${refusal ? ` ${refusal.code}` : ''}`;
  const fields = {
    method,
    path,
    status,
    ms,
    app,
    user,
    code: refusal?.code,
    reason: refusal?.reason,
    incident: refusal?.incident,
  };
  if (refusal?.code !== 'TOKEN_REVOKED') return { level: 'info', fields, message: base };
  const why = refusal.incident
    ? `contained by incident ${refusal.incident}: see npx gatehouse incident show ${refusal.incident}`
    : refusal.reason === 'app_not_approved'
      ? `refused: the app is suspended, retired or due for review: see npx gatehouse app show ${app ?? 'APP'}`
      : refusal.reason === 'key_revoked'
        ? 'signed by a revoked key: the app gets a new token by signing in again'
        : 'revoked (by containment or an operator): see npx gatehouse incident list';
  return { level: 'warn', fields, message: `${base} - token ${why}` };
}
