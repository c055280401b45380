import * as oauth from 'oauth4webapi';
import { SignInRequired } from './errors.js';
import type { TokenSet } from './tokens.js';

const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';

export interface BrokerOptions {
  /** Gatehouse's URL, which is the broker's issuer (`http://127.0.0.1:8080` for the demo). */
  issuer: string;
  /** The app's client id from its registration (a public client: PKCE, no secret). */
  clientId: string;
  /** A DPoP key (RFC 9449); tokens are then bound to it. Make it with `generateDpopKey()`. */
  dpop?: oauth.CryptoKeyPair;
  /**
   * An origin that forwards to Gatehouse, such as the app's own dev server proxy: Gatehouse sends no
   * CORS headers, so a browser app reaches it through its own origin. Tokens and proofs still name
   * the issuer.
   */
  via?: string;
}

type Fetch = (
  url: string,
  init: oauth.CustomFetchOptions<string, oauth.ProtectedResourceRequestBody>,
) => Promise<Response>;
type RequestOptions = { [oauth.allowInsecureRequests]?: boolean; [oauth.customFetch]?: Fetch };

/** The loopback rule and, with `via`, a fetch that sends the issuer's URLs through that origin. */
function requestOptions(issuer: URL, via: string | undefined): RequestOptions {
  const options: RequestOptions = isLoopback(issuer) ? { [oauth.allowInsecureRequests]: true } : {};
  if (via === undefined) return options;
  const through = new URL(via).origin;
  const rewrite = (url: string) =>
    url.startsWith(issuer.origin) ? through + url.slice(issuer.origin.length) : url;
  return { ...options, [oauth.customFetch]: (url, init) => fetch(rewrite(url), init as RequestInit) };
}

/** A new ES256 key for DPoP whose private half cannot be exported, not even by the app's own code. */
export function generateDpopKey(): Promise<oauth.CryptoKeyPair> {
  return oauth.generateKeyPair('ES256', { extractable: false });
}

/** Plain HTTP only to this machine (the demo); anything else must be HTTPS. */
function isLoopback(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** A response body error from the broker as the SDK's typed error (the user must sign in again). */
function refused(error: unknown): never {
  if (error instanceof oauth.ResponseBodyError) {
    throw new SignInRequired({
      status: error.status,
      code: `OAUTH_${error.error.toUpperCase()}`,
      detail: error.error_description ?? error.error,
    });
  }
  throw error;
}

/**
 * The broker, through oauth4webapi: discovery, the code flow with PKCE, token exchange, refresh and
 * revocation. Holds the app's DPoP handle, so every token it gets is bound to the same key.
 */
export class Broker {
  readonly server: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly dpop: oauth.DPoPHandle | undefined;
  readonly #options: RequestOptions;

  private constructor(server: oauth.AuthorizationServer, client: oauth.Client, options: BrokerOptions) {
    this.server = server;
    this.client = client;
    this.dpop = options.dpop ? oauth.DPoP(client, options.dpop) : undefined;
    this.#options = requestOptions(new URL(server.issuer), options.via);
  }

  /** Reads the broker's metadata (RFC 8414) and checks its issuer. */
  static async discover(options: BrokerOptions): Promise<Broker> {
    const issuer = new URL(options.issuer);
    const response = await oauth.discoveryRequest(issuer, {
      algorithm: 'oauth2',
      ...requestOptions(issuer, options.via),
    });
    const server = await oauth.processDiscoveryResponse(issuer, response);
    return new Broker(server, { client_id: options.clientId }, options);
  }

  /** Where to send the browser to sign in; keep `codeVerifier` and `state` for `redeemCode`. */
  async authorizationUrl(options: {
    redirectUri: string;
    scope: string;
    state: string;
    codeVerifier: string;
    /** RFC 9396: a capability over these accounts only. */
    accountIds?: readonly string[];
  }): Promise<URL> {
    const endpoint = this.server.authorization_endpoint;
    if (!endpoint) throw new TypeError('the broker names no authorization endpoint');
    const url = new URL(endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.client.client_id,
      redirect_uri: options.redirectUri,
      scope: options.scope,
      state: options.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(options.codeVerifier),
      code_challenge_method: 'S256',
      ...(options.accountIds && capabilityParameters(options.accountIds)),
    }).toString();
    return url;
  }

  /** Redeems the code the broker sent back to `currentUrl` (state and iss checked, PKCE proven). */
  async redeemCode(
    currentUrl: URL,
    options: { redirectUri: string; state: string; codeVerifier: string },
  ): Promise<TokenSet & { scope: string }> {
    try {
      const params = oauth.validateAuthResponse(this.server, this.client, currentUrl, options.state);
      const response = await oauth.authorizationCodeGrantRequest(
        this.server,
        this.client,
        oauth.None(),
        params,
        options.redirectUri,
        options.codeVerifier,
        this.#request(),
      );
      return tokenSet(await oauth.processAuthorizationCodeResponse(this.server, this.client, response));
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError) {
        throw new SignInRequired({
          status: 400,
          code: `OAUTH_${error.error.toUpperCase()}`,
          detail: error.error_description ?? error.error,
        });
      }
      return refused(error);
    }
  }

  /** Token exchange (RFC 8693) for a back end: the user's ID token for a narrow access token. */
  async exchange(subjectToken: string, scope: string): Promise<TokenSet & { scope: string }> {
    const response = await oauth.genericTokenEndpointRequest(
      this.server,
      this.client,
      oauth.None(),
      tokenExchangeGrant,
      {
        subject_token: subjectToken,
        subject_token_type: idTokenType,
        scope,
        client_id: this.client.client_id,
      },
      this.#request(),
    );
    return tokenSet(
      await oauth.processGenericTokenEndpointResponse(this.server, this.client, response).catch(refused),
    );
  }

  /** One refresh; use `RotatingTokens` rather than calling this directly (rotation allows one use). */
  /**
   * Refreshes (the broker rotates the refresh token). With `accountIds`, the new tokens and every later
   * refresh are narrowed to those accounts (RFC 9396), e.g. once the app has learnt which are the user's.
   */
  async refresh(refreshToken: string, narrow: { accountIds?: readonly string[] } = {}): Promise<TokenSet> {
    const response = await oauth.refreshTokenGrantRequest(
      this.server,
      this.client,
      oauth.None(),
      refreshToken,
      {
        ...this.#request(),
        ...(narrow.accountIds && { additionalParameters: capabilityParameters(narrow.accountIds) }),
      },
    );
    return tokenSet(
      await oauth.processRefreshTokenResponse(this.server, this.client, response).catch(refused),
    );
  }

  /** Ends the sign-in (RFC 7009): revoking the refresh token revokes its access tokens too. */
  async revoke(token: string): Promise<void> {
    const response = await oauth.revocationRequest(
      this.server,
      this.client,
      oauth.None(),
      token,
      this.#options,
    );
    await oauth.processRevocationResponse(response).catch(refused);
  }

  /** Options for a protected resource request to the gateway: the DPoP handle and loopback rule. */
  resourceOptions(): oauth.ProtectedResourceRequestOptions {
    return this.#request();
  }

  #request() {
    return { ...this.#options, ...(this.dpop ? { DPoP: this.dpop } : {}) };
  }
}

function tokenSet(answer: oauth.TokenEndpointResponse): TokenSet & { scope: string } {
  return {
    accessToken: answer.access_token,
    ...(answer.refresh_token !== undefined && { refreshToken: answer.refresh_token }),
    expiresAt: Date.now() + (answer.expires_in ?? 300) * 1000,
    scope: answer.scope ?? '',
  };
}

/** RFC 9396 `authorization_details` naming a capability over these CRM accounts only. */
function capabilityParameters(accountIds: readonly string[]): Record<string, string> {
  return { authorization_details: JSON.stringify([{ type: 'crm_accounts', account_ids: accountIds }]) };
}
