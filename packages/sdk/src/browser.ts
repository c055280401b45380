/// <reference lib="dom" />
import * as oauth from 'oauth4webapi';
import type { Broker } from './oauth.js';
import type { TokenSet } from './tokens.js';

export interface SignInOptions {
  redirectUri: string;
  scope: string;
  /**
   * Narrows the sign-in to these CRM accounts (a capability token, RFC 9396 `authorization_details`):
   * the app then sees nothing of any other account, whatever the user may see.
   */
  accountIds?: readonly string[];
  /** Where the pending sign-in is kept across the redirect; sessionStorage by default. */
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
}

const pendingKey = 'gatehouse.sign-in';

/** Starts the browser sign-in: keeps PKCE verifier and state for this tab, answers where to go. */
export async function beginSignIn(broker: Broker, options: SignInOptions): Promise<URL> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  (options.storage ?? sessionStorage).setItem(pendingKey, JSON.stringify({ codeVerifier, state }));
  return broker.authorizationUrl({
    redirectUri: options.redirectUri,
    scope: options.scope,
    state,
    codeVerifier,
    ...(options.accountIds && { accountIds: options.accountIds }),
  });
}

/** Finishes it on the redirect URI: checks state and issuer, redeems the code once. */
export async function completeSignIn(
  broker: Broker,
  currentUrl: URL,
  options: SignInOptions,
): Promise<TokenSet & { scope: string }> {
  const storage = options.storage ?? sessionStorage;
  const pending = storage.getItem(pendingKey);
  storage.removeItem(pendingKey);
  if (pending === null) throw new TypeError('no sign-in was started in this tab');
  const { codeVerifier, state } = JSON.parse(pending) as { codeVerifier: string; state: string };
  return broker.redeemCode(currentUrl, { redirectUri: options.redirectUri, state, codeVerifier });
}
