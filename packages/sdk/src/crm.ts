import * as oauth from 'oauth4webapi';
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './crm-api.js';
import { problemOf, TokenRevoked } from './errors.js';
import type { TokenSource } from './tokens.js';
import { traced } from './trace.js';

export interface CrmClientOptions {
  /** Gatehouse's URL (the gateway serves /crm/v1 there). */
  baseUrl: string;
  tokens: TokenSource;
  /** The broker's options for resource requests (`broker.resourceOptions()`): DPoP and loopback. */
  request?: oauth.ProtectedResourceRequestOptions;
}

/**
 * fetch for the gateway: the access token (Bearer, or DPoP with a proof), a traceparent and a span
 * per call, one retry with the DPoP nonce the gateway asks for, one retry with a renewed token after a
 * 401 invalid_token, and every refusal thrown as its typed error.
 */
export function governedFetch(options: CrmClientOptions): (request: Request) => Promise<Response> {
  const send = async (request: Request, headers: Headers, body: ArrayBuffer | undefined, token: string) => {
    const attempt = () =>
      oauth.protectedResourceRequest(
        token,
        request.method,
        new URL(request.url),
        new Headers(headers),
        body,
        options.request,
      );
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
      // RFC 9449 §9: the handle cached the server's nonce; one more proof with it.
      if (oauth.isDPoPNonceError(error)) return attempt().catch((again: unknown) => challenged(again));
      return error.response;
    }
  };
  return async (request) => {
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    const body = request.body === null ? undefined : await request.arrayBuffer();
    const response = await traced(`${request.method} ${new URL(request.url).pathname}`, headers, async () => {
      let token = await options.tokens.accessToken();
      let answer = await send(request, headers, body, token);
      if (answer.status === 401 && !((await problemOf(answer.clone())) instanceof TokenRevoked)) {
        token = await options.tokens.renew(token);
        answer = await send(request, headers, body, token);
      }
      return answer;
    });
    if (!response.ok) throw await problemOf(response);
    return response;
  };
}

function challenged(error: unknown): Response {
  if (error instanceof oauth.WWWAuthenticateChallengeError) return error.response;
  throw error;
}

/**
 * The typed CRM client: paths, parameters and field names from Gatehouse's /openapi.json. Pass an
 * app's own narrowed `paths` (from `/openapi.json?app=ID`) to have its scopes checked at compile time.
 */
export function createCrmClient<Paths extends object = paths>(options: CrmClientOptions): Client<Paths> {
  return createClient<Paths>({
    baseUrl: options.baseUrl,
    fetch: governedFetch(options),
    // `fields=a,b` as the gateway reads it (style form, explode false).
    querySerializer: { array: { style: 'form', explode: false } },
  });
}
