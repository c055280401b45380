import { beginSignIn, Broker, completeSignIn, RotatingTokens, type TokenSet } from '@gatehouse/sdk';

/** Every console duty is asked for; the broker grants only those the user's role holds. */
const consoleScope = 'maker review audit:read admin';
const tokenKey = 'gatehouse.console.tokens';
const returnKey = 'gatehouse.console.return';
const base = '/console';

export interface Me {
  sub: string;
  email: string;
  role: string;
  scopes: string[];
  duties: Array<'maker' | 'reviewer' | 'auditor' | 'admin'>;
}

export interface Session {
  me: Me;
  api<T>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  /** Sends bytes as they are (a bundle to scan), with their media type; answers the JSON. */
  upload<T>(path: string, bytes: Blob, mediaType: string): Promise<T>;
  text(path: string): Promise<string>;
  signOut(): Promise<void>;
}

/** A refused API call: the problem's title and detail, as Gatehouse wrote them. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The broker is this origin; its metadata names the issuer the tokens carry. */
async function broker(): Promise<Broker> {
  const metadata = (await (await fetch('/.well-known/oauth-authorization-server')).json()) as {
    issuer: string;
  };
  return Broker.discover({ issuer: metadata.issuer, clientId: 'console', via: location.origin });
}

const signIn = () => ({ redirectUri: `${location.origin}${base}/callback`, scope: consoleScope });

/**
 * The signed-in console session, or undefined while the browser is on its way to the sign-in page
 * (authorization code + PKCE with the `console` client). The tokens live in this tab only.
 */
export async function openSession(): Promise<Session | undefined> {
  let tokens = readTokens();
  if (location.pathname === `${base}/callback`) {
    const back = sessionStorage.getItem(returnKey) ?? `${base}/`;
    sessionStorage.removeItem(returnKey);
    tokens = await completeSignIn(await broker(), new URL(location.href), signIn());
    sessionStorage.setItem(tokenKey, JSON.stringify(tokens));
    history.replaceState(null, '', back);
  }
  if (!tokens) {
    await restart();
    return undefined;
  }
  // Access tokens live minutes; the rotating refresh token keeps the console signed in meanwhile.
  const from = await broker();
  const held = new RotatingTokens(tokens, async (refreshToken) => {
    const next = await from.refresh(refreshToken);
    sessionStorage.setItem(tokenKey, JSON.stringify(next));
    return next;
  });
  const send = async (path: string, init: Init, token: string) =>
    fetch(path, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.bytes !== undefined
          ? { 'content-type': init.bytes.type }
          : init.body === undefined
            ? {}
            : { 'content-type': 'application/json' }),
      },
      ...(init.bytes !== undefined
        ? { body: init.bytes.data }
        : init.body === undefined
          ? {}
          : { body: JSON.stringify(init.body) }),
    });
  const request = async (path: string, init: Init = {}) => {
    const token = await held.accessToken().catch(() => undefined);
    let response = token === undefined ? undefined : await send(path, init, token);
    if (token !== undefined && response?.status === 401) {
      const renewed = await held.renew(token).catch(() => undefined);
      if (renewed !== undefined) response = await send(path, init, renewed);
    }
    if (response === undefined || response.status === 401) {
      // Revoked, or the sign-in lapsed: sign in again and come back here.
      await restart();
      throw new ApiProblem(401, 'signing in again', {});
    }
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      // Problem details from the admin API; RFC 6749 errors from the broker's own endpoints.
      const detail =
        typeof problem.detail === 'string'
          ? problem.detail
          : typeof problem.error_description === 'string'
            ? problem.error_description
            : response.statusText;
      throw new ApiProblem(response.status, detail, problem);
    }
    return response;
  };
  const api = async <T>(path: string, init?: { method?: string; body?: unknown }) =>
    (await (await request(path, init)).json()) as T;
  const me = await api<Me>('/admin/v1/me');
  return {
    me,
    api,
    text: async (path) => (await request(path)).text(),
    upload: async <T>(path: string, bytes: Blob, mediaType: string) =>
      (await (await request(path, { method: 'POST', bytes: { data: bytes, type: mediaType } })).json()) as T,
    async signOut() {
      sessionStorage.removeItem(tokenKey);
      await from.revoke(held.current.refreshToken ?? held.current.accessToken).catch(() => undefined);
      location.assign(`${base}/signed-out`);
    },
  };
}

interface Init {
  method?: string;
  body?: unknown;
  bytes?: { data: Blob; type: string };
}

function readTokens(): TokenSet | undefined {
  const kept = sessionStorage.getItem(tokenKey);
  return kept === null ? undefined : (JSON.parse(kept) as TokenSet);
}

async function restart(): Promise<void> {
  sessionStorage.removeItem(tokenKey);
  sessionStorage.setItem(returnKey, location.pathname + location.search);
  location.assign(await beginSignIn(await broker(), signIn()));
}
