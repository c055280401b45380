import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AccessDenied, GatehouseError, OAuthError, TokenError, toProblem } from '../errors/index.js';
import type { AccessTokenClaims } from './access-token.js';
import { loginCookie, type BrowserAnswer } from './authorize.js';
import { authenticateChallenge } from './challenge.js';
import { redirectSource, styleSource } from './consent-page.js';
import type { Broker } from './broker.js';

const formType = 'application/x-www-form-urlencoded';
const authorization = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * The broker's HTTP face. Registers a form parser unless the app has one.
 *
 * OAuth: discovery, JWKS, /oauth/token (token exchange, authorization_code, refresh_token),
 * /oauth/authorize → company IdP → /oauth/callback → consent screen → POST /oauth/consent,
 * /oauth/revoke (RFC 7009), /oauth/introspect (RFC 7662, Bearer token with `admin` or `audit:read`).
 *
 * Just-in-time elevation, JSON, with the caller's own access token (Bearer, or DPoP for bound tokens):
 *   POST /oauth/elevations               {scope, justification} → 201 the request (pending)
 *   GET  /oauth/elevations?status=...    reviewers (scope `review`): the requests
 *   GET  /oauth/elevations/:id           the requester or a reviewer
 *   POST /oauth/elevations/:id/approve   a reviewer who is not the requester
 *   POST /oauth/elevations/:id/refuse    a reviewer who is not the requester
 *   POST /oauth/elevations/:id/token     the requester, once approved: the elevated access token
 */
export function registerBrokerRoutes(
  app: FastifyInstance,
  broker: Broker,
  options: { networkOf?: (ip: string) => string } = {},
): void {
  const networkOf = options.networkOf ?? (() => 'unknown');
  void app.register(async function brokerRoutes(child) {
    if (!child.hasContentTypeParser(formType)) await child.register(formbody);

    child.get('/.well-known/oauth-authorization-server', async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').send(broker.metadata),
    );
    child.get('/.well-known/jwks.json', async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').send(broker.jwks),
    );

    // The issuer is this server's public URL, under which problem types resolve.
    const oauth = (request: FastifyRequest, reply: FastifyReply, run: () => Promise<unknown>) =>
      answerOAuth(broker.issuer, request, reply, run);
    const secure = broker.issuer.startsWith('https:');
    const browser = (request: FastifyRequest) => cookie(request.headers.cookie, loginCookie);
    const answer = (reply: FastifyReply, result: BrowserAnswer) => {
      reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      reply.header('x-frame-options', 'DENY').header('content-security-policy', pagePolicy(result));
      if (result.kind === 'redirect' && result.setCookie) {
        const attributes = `Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=3600${secure ? '; Secure' : ''}`;
        reply.header('set-cookie', `${loginCookie}=${result.setCookie}; ${attributes}`);
      } else if (result.clearCookie) {
        reply.header('set-cookie', `${loginCookie}=; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=0`);
      }
      if (result.kind === 'redirect') return reply.code(303).header('location', result.location).send();
      return reply.code(result.status).type('text/html; charset=utf-8').send(result.html);
    };
    child.get('/oauth/authorize', async (request, reply) =>
      answer(reply, await broker.authorize(request.query as Record<string, unknown>)),
    );
    child.get('/oauth/callback', async (request, reply) =>
      answer(reply, await broker.callback(request.query as Record<string, unknown>, browser(request))),
    );
    child.post('/oauth/consent', async (request, reply) =>
      answer(reply, await broker.consent(formBody(request), browser(request))),
    );

    child.post('/oauth/token', async (request, reply) =>
      oauth(request, reply, async () => {
        const dpop = request.headers.dpop;
        if (Array.isArray(dpop)) throw new OAuthError('OAUTH_INVALID_DPOP_PROOF', 'send one DPoP proof');
        return broker.exchangeToken(formBody(request), {
          dpop,
          requestId: request.id,
          network: networkOf(request.ip),
        });
      }),
    );
    child.post('/oauth/revoke', async (request, reply) =>
      oauth(request, reply, async () => {
        const admin = request.headers.authorization ? await caller(broker, request) : undefined;
        await broker.revoke(formBody(request), admin, {
          requestId: request.id,
          network: networkOf(request.ip),
        });
        return {};
      }),
    );
    child.post('/oauth/introspect', async (request, reply) =>
      oauth(request, reply, async () => broker.introspect(formBody(request), await caller(broker, request))),
    );

    const body = (request: FastifyRequest) =>
      typeof request.body === 'object' && request.body !== null
        ? (request.body as Record<string, unknown>)
        : {};
    const id = (request: FastifyRequest) => (request.params as { id: string }).id;
    child.post('/oauth/elevations', async (request, reply) =>
      oauth(request, reply, async () => {
        reply.code(201);
        return broker.elevations.request(await caller(broker, request), body(request), request.id);
      }),
    );
    child.get('/oauth/elevations', async (request, reply) =>
      oauth(request, reply, async () => {
        const status = (request.query as { status?: unknown }).status;
        return broker.elevations.list(
          await caller(broker, request),
          typeof status === 'string' ? status : undefined,
        );
      }),
    );
    child.get('/oauth/elevations/:id', async (request, reply) =>
      oauth(request, reply, async () => broker.elevations.show(await caller(broker, request), id(request))),
    );
    for (const decision of ['approve', 'refuse'] as const) {
      child.post(`/oauth/elevations/:id/${decision}`, async (request, reply) =>
        oauth(request, reply, async () =>
          broker.elevations.decide(await caller(broker, request), id(request), decision, request.id),
        ),
      );
    }
    child.post('/oauth/elevations/:id/token', async (request, reply) =>
      oauth(request, reply, async () =>
        broker.elevations.issue(await caller(broker, request), id(request), request.id),
      ),
    );
  });
}

/**
 * The CSP of the browser-facing answers. The consent form's action admits the app's verified redirect
 * URI as well: Chromium applies form-action to the 303 after the POST, and would otherwise drop the code.
 */
export function pagePolicy(result: BrowserAnswer): string {
  const target = result.kind === 'page' && result.formAction ? redirectSource(result.formAction) : undefined;
  const formAction = target ? `'self' ${target}` : "'self'";
  return `default-src 'none'; style-src ${styleSource}; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}

function formBody(request: FastifyRequest): Record<string, unknown> {
  const contentType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (contentType !== formType || typeof request.body !== 'object' || request.body === null) {
    throw new OAuthError('OAUTH_INVALID_REQUEST', `send the request as ${formType}`);
  }
  return request.body as Record<string, unknown>;
}

/** The verified access token of the caller, with its DPoP proof when the token is bound. */
export async function caller(broker: Broker, request: FastifyRequest): Promise<AccessTokenClaims> {
  const header = request.headers.authorization;
  if (!header) throw new TokenError('missing', 'send an access token as "Authorization: Bearer <token>"');
  const match = authorization.exec(header);
  if (!match) throw new TokenError('malformed', 'the Authorization header is not a Bearer or DPoP token');
  const [, scheme = '', token = ''] = match;
  const claims = await broker.verifyAccessToken(token);
  // RFC 9449 §7.1: a bound token comes with the DPoP scheme, never as a plain bearer token.
  if (claims.cnf !== undefined && scheme.toLowerCase() !== 'dpop') {
    throw new TokenError('dpop_invalid', 'a DPoP-bound token must be sent with the DPoP scheme');
  }
  await broker.verifyDpop({
    claims,
    dpopHeader: request.headers.dpop,
    method: request.method,
    url: request.url,
    accessToken: token,
  });
  return claims;
}

/** The RFC 6749 §5.2 / RFC 6750 §3.1 error code for a refusal at an OAuth endpoint. */
export function oauthErrorCode(error: GatehouseError): string {
  if (error instanceof OAuthError) return error.oauthError;
  if (error instanceof TokenError)
    return error.code === 'TOKEN_DPOP_INVALID' ? 'invalid_dpop_proof' : 'invalid_token';
  if (error instanceof AccessDenied) return 'insufficient_scope';
  if (error.status === 503) return 'temporarily_unavailable';
  return error.status >= 500 ? 'server_error' : 'invalid_request';
}

/**
 * Runs an OAuth endpoint: no-store, and errors as `application/json` (RFC 6749 §5.2: OAuth client
 * libraries refuse any other type) with `error` and `error_description`, plus the problem members.
 */
async function answerOAuth(
  issuer: string,
  request: FastifyRequest,
  reply: FastifyReply,
  run: () => Promise<unknown>,
) {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  try {
    return reply.send(await run());
  } catch (error) {
    if (!(error instanceof GatehouseError)) throw error;
    const problem = toProblem(error, { publicUrl: issuer, instance: request.id });
    request.log.debug({ code: problem.code }, 'broker request refused');
    if (problem.status === 503) reply.header('retry-after', '5');
    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    const code = oauthErrorCode(error);
    if (error instanceof TokenError) reply.header('www-authenticate', authenticateChallenge(error));
    return reply
      .code(problem.status)
      .type('application/json')
      .send({ ...problem, error: code, error_description: error.message });
  }
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim() || undefined;
  }
  return undefined;
}
