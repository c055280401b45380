import { DependencyUnavailable, OAuthError } from '../errors/index.js';
import { consentPage, errorPage } from './consent-page.js';
import {
  nowSeconds,
  paramsOf,
  randomToken,
  roleScopes,
  safeEqual,
  sha256,
  type BrokerContext,
  type ClientInfo,
} from './context.js';
import { checkCapability, parseCapability, type Capability } from './grants.js';
import { grantScopes, parseScope } from './scopes.js';
import type { SubjectIdentity } from './subject-token.js';

/** The cookie binding a sign-in to the browser that started it (login CSRF, RFC 6749 §10.12). */
export const loginCookie = 'gatehouse_login';
const challenge = /^[A-Za-z0-9_-]{43}$/;

/**
 * What the HTTP layer sends back: a redirect, or a page (never a redirect to an unverified URI). A page
 * whose form leads to the app names the app's verified redirect URI in `formAction`.
 */
export type BrowserAnswer =
  | { kind: 'redirect'; location: string; setCookie?: string; clearCookie?: boolean }
  | { kind: 'page'; status: number; html: string; clearCookie?: boolean; formAction?: string };

const page = (status: number, title: string, detail: string): BrowserAnswer => ({
  kind: 'page',
  status,
  html: errorPage(title, detail),
});

function redirectTo(
  ctx: BrokerContext,
  redirectUri: string,
  params: Record<string, string | null | undefined>,
) {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  // RFC 9207: the app can tell which authorization server answered.
  url.searchParams.set('iss', ctx.issuer);
  return url.toString();
}

/**
 * Exact match, except that a registered loopback IP redirect URI matches on any port (RFC 8252 §7.3):
 * a native app such as the CLI listens on an ephemeral port it cannot register in advance.
 */
export function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  const loopback = (uri: string): URL | undefined => {
    try {
      const url = new URL(uri);
      return url.protocol === 'http:' && ['127.0.0.1', '[::1]'].includes(url.hostname) ? url : undefined;
    } catch {
      return undefined;
    }
  };
  const [a, b] = [loopback(registered), loopback(requested)];
  if (a === undefined || b === undefined || b.username !== '' || b.password !== '' || b.hash !== '')
    return false;
  return a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search;
}

/**
 * GET /oauth/authorize: checks the client and its redirect URI (exactly one of the manifest's), then
 * PKCE (S256 only) and scopes, remembers the request and sends the browser to the company IdP with its
 * own state, nonce and PKCE.
 */
export async function authorize(
  ctx: BrokerContext,
  query: Readonly<Record<string, unknown>>,
): Promise<BrowserAnswer> {
  let param: ReturnType<typeof paramsOf>;
  let client: ClientInfo | undefined;
  let redirectUri: string | undefined;
  try {
    param = paramsOf(query);
    const clientId = param('client_id');
    client = clientId === undefined ? undefined : await ctx.lookupClient(clientId);
    redirectUri = param('redirect_uri');
  } catch {
    return page(400, 'Invalid request', 'The sign-in request is malformed.');
  }
  if (!client || client.status !== 'approved') {
    return page(400, 'Unknown app', 'This app is unknown or not approved, so it cannot sign you in.');
  }
  // Exact string match against the manifest; nothing is sent to a URI that does not match.
  if (
    redirectUri === undefined ||
    !(client.redirectUris ?? []).some((r) => redirectUriMatches(r, redirectUri))
  ) {
    return page(
      400,
      'Redirect URI mismatch',
      "The app's redirect URI is not one registered in its security plan.",
    );
  }
  const state = param('state');
  const refuse = (error: string, description: string): BrowserAnswer => ({
    kind: 'redirect',
    location: redirectTo(ctx, redirectUri, { error, error_description: description, state }),
  });
  if (param('response_type') !== 'code')
    return refuse('unsupported_response_type', 'only response_type=code is supported');
  const codeChallenge = param('code_challenge');
  if (codeChallenge === undefined) return refuse('invalid_request', 'PKCE is required: send code_challenge');
  if (param('code_challenge_method') !== 'S256') {
    return refuse('invalid_request', 'code_challenge_method must be S256');
  }
  if (!challenge.test(codeChallenge))
    return refuse('invalid_request', 'code_challenge is not a S256 challenge');
  let scopes: string[];
  try {
    scopes = parseScope(param('scope'));
    const unapproved = scopes.filter((scope) => !client.scopes.includes(scope));
    if (unapproved.length > 0)
      return refuse('invalid_scope', 'a requested scope is not approved for this app');
  } catch {
    return refuse('invalid_scope', 'the scope parameter is malformed');
  }
  // RFC 9396: a capability narrows the sign-in to named accounts, checked as on token exchange.
  let cap: Capability | undefined;
  try {
    cap = parseCapability(param('authorization_details'));
  } catch (error) {
    return refuse('invalid_authorization_details', (error as Error).message);
  }
  let endpoint: string | undefined;
  try {
    endpoint = (await ctx.idp.metadata()).authorization_endpoint;
  } catch {
    endpoint = undefined;
  }
  if (!endpoint) return refuse('temporarily_unavailable', 'the identity provider cannot be reached');

  const idpState = randomToken();
  const idpNonce = randomToken();
  const idpVerifier = randomToken();
  const browser = randomToken();
  await ctx.db
    .insertInto('broker_logins')
    .values({
      id: sha256(idpState),
      browser_hash: sha256(browser),
      client_id: client.clientId,
      redirect_uri: redirectUri,
      scope: scopes.join(' '),
      state: state ?? null,
      code_challenge: codeChallenge,
      idp_nonce: idpNonce,
      idp_verifier: idpVerifier,
      identity: null,
      granted_scope: null,
      cap: cap ? JSON.stringify(cap) : null,
      consent_hash: null,
      done: 0,
      expires_at: nowSeconds(ctx) + ctx.config.broker.loginTtlSeconds,
    })
    .execute();
  const target = new URL(endpoint);
  target.search = new URLSearchParams({
    client_id: ctx.config.idp.audience,
    response_type: 'code',
    scope: ctx.config.idp.loginScope,
    redirect_uri: `${ctx.issuer}/oauth/callback`,
    state: idpState,
    nonce: idpNonce,
    code_challenge: sha256(idpVerifier),
    code_challenge_method: 'S256',
  }).toString();
  return { kind: 'redirect', location: target.toString(), setCookie: browser };
}

type LoginRow = Awaited<ReturnType<typeof findLogin>>;

async function findLogin(ctx: BrokerContext, login: string | undefined, browser: string | undefined) {
  if (login === undefined || browser === undefined) return undefined;
  const row = await ctx.db
    .selectFrom('broker_logins')
    .selectAll()
    .where('id', '=', sha256(login))
    .executeTakeFirst();
  if (!row || row.done !== 0 || Number(row.expires_at) <= nowSeconds(ctx)) return undefined;
  return safeEqual(sha256(browser), row.browser_hash) ? row : undefined;
}

const lost = () =>
  page(
    400,
    'Sign-in expired',
    'This sign-in expired, was already used, or was started in another browser. Start again from the app.',
  );

async function finish(ctx: BrokerContext, row: NonNullable<LoginRow>): Promise<boolean> {
  const result = await ctx.db
    .updateTable('broker_logins')
    .set({ done: 1 })
    .where('id', '=', row.id)
    .where('done', '=', 0)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** GET /oauth/callback: the IdP's answer. Redeems its code, checks the ID token and its nonce, asks consent. */
export async function callback(
  ctx: BrokerContext,
  query: Readonly<Record<string, unknown>>,
  browser: string | undefined,
): Promise<BrowserAnswer> {
  let param: ReturnType<typeof paramsOf>;
  try {
    param = paramsOf(query);
    param('state');
  } catch {
    return page(400, 'Invalid request', 'The sign-in answer is malformed.');
  }
  const state = param('state');
  const row = await findLogin(ctx, state, browser);
  if (!row || state === undefined) return lost();
  const back = (error: string, description: string): BrowserAnswer => ({
    kind: 'redirect',
    location: redirectTo(ctx, row.redirect_uri, { error, error_description: description, state: row.state }),
    clearCookie: true,
  });
  const code = param('code');
  if (param('error') !== undefined || code === undefined) {
    await finish(ctx, row);
    return back('access_denied', 'the sign-in at the identity provider did not succeed');
  }
  let identity: SubjectIdentity;
  try {
    const idToken = await redeemAtIdp(ctx, code, row.idp_verifier);
    identity = await ctx.idp.verifyIdToken(idToken, { nonce: row.idp_nonce });
  } catch (error) {
    await finish(ctx, row);
    if (error instanceof DependencyUnavailable)
      return back('temporarily_unavailable', 'the identity provider cannot be reached');
    return back('access_denied', 'the identity provider did not confirm who you are');
  }
  let granted: string[];
  try {
    granted = grantScopes(row.scope.split(' '), row.scope.split(' '), roleScopes(ctx, identity.role));
  } catch {
    await finish(ctx, row);
    return back('invalid_scope', "none of the requested scopes is allowed for this user's role");
  }
  const client = await ctx.lookupClient(row.client_id);
  if (!client || client.status !== 'approved') {
    await finish(ctx, row);
    return back('unauthorized_client', 'the app is no longer approved');
  }
  const cap = row.cap === null ? undefined : (JSON.parse(row.cap) as Capability);
  if (cap) {
    try {
      await checkCapability(ctx, identity, cap);
    } catch {
      await finish(ctx, row);
      return back(
        'invalid_authorization_details',
        'the capability names accounts this user may not be given',
      );
    }
  }
  const csrf = randomToken();
  await ctx.db
    .updateTable('broker_logins')
    .set({ identity: JSON.stringify(identity), granted_scope: granted.join(' '), consent_hash: sha256(csrf) })
    .where('id', '=', row.id)
    .where('identity', 'is', null)
    .execute();
  return {
    kind: 'page',
    status: 200,
    html: consentPage({
      config: ctx.config,
      appName: client.name,
      owner: client.owner,
      purpose: client.purpose,
      user: identity.email ?? identity.sub,
      scopes: granted,
      ...(cap ? { accounts: cap.account_ids } : {}),
      login: state,
      csrf,
    }),
    formAction: row.redirect_uri,
  };
}

/** POST /oauth/consent: the user's answer. Allow issues a one-time code to the app's redirect URI. */
export async function consent(
  ctx: BrokerContext,
  form: Readonly<Record<string, unknown>>,
  browser: string | undefined,
): Promise<BrowserAnswer> {
  let param: ReturnType<typeof paramsOf>;
  try {
    param = paramsOf(form);
    param('login');
    param('csrf');
    param('decision');
  } catch {
    return page(400, 'Invalid request', 'The consent answer is malformed.');
  }
  const row = await findLogin(ctx, param('login'), browser);
  const csrf = param('csrf');
  if (!row || row.identity === null || row.consent_hash === null || row.granted_scope === null) return lost();
  if (csrf === undefined || !safeEqual(sha256(csrf), row.consent_hash)) return lost();
  if (!(await finish(ctx, row))) return lost();
  if (param('decision') !== 'allow') {
    return {
      kind: 'redirect',
      location: redirectTo(ctx, row.redirect_uri, {
        error: 'access_denied',
        error_description: 'the user did not allow access',
        state: row.state,
      }),
      clearCookie: true,
    };
  }
  const code = randomToken();
  await ctx.db
    .insertInto('broker_codes')
    .values({
      code_hash: sha256(code),
      client_id: row.client_id,
      redirect_uri: row.redirect_uri,
      code_challenge: row.code_challenge,
      scope: row.granted_scope,
      identity: row.identity,
      family_id: randomToken(18),
      cap: row.cap,
      expires_at: nowSeconds(ctx) + ctx.config.broker.authorizationCodeTtlSeconds,
      used_at: null,
    })
    .execute();
  return {
    kind: 'redirect',
    location: redirectTo(ctx, row.redirect_uri, { code, state: row.state }),
    clearCookie: true,
  };
}

/** The IdP's token endpoint, as an OIDC relying party: code + PKCE, client secret when configured. */
async function redeemAtIdp(ctx: BrokerContext, code: string, verifier: string): Promise<string> {
  const { token_endpoint: endpoint } = await ctx.idp.metadata();
  if (!endpoint)
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the identity provider has no token endpoint');
  const { audience: clientId, clientSecret } = ctx.config.idp;
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: `${ctx.issuer}/oauth/callback`,
    code_verifier: verifier,
    client_id: clientId,
  });
  if (clientSecret !== undefined) {
    // RFC 6749 §2.3.1: each part form-urlencoded before base64.
    const user = encodeURIComponent(clientId);
    headers.authorization = `Basic ${Buffer.from(`${user}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  }
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers,
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
  } catch (cause) {
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the identity provider cannot be reached', {
      cause,
    });
  }
  if (response.status >= 500) {
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the identity provider failed', {
      cause: new Error(`IdP token endpoint answered ${response.status}`),
    });
  }
  const answer = (await response.json().catch(() => ({}))) as { id_token?: unknown };
  if (!response.ok || typeof answer.id_token !== 'string') {
    throw new OAuthError('OAUTH_INVALID_GRANT', 'the identity provider refused the sign-in', {
      cause: new Error(`IdP token endpoint answered ${response.status}`),
    });
  }
  return answer.id_token;
}
