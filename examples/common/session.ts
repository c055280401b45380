import {
  beginSignIn,
  Broker,
  completeSignIn,
  createCrmClient,
  RotatingTokens,
  type CrmPaths,
  type TokenSet,
} from '@gatehouse/sdk';
import type { Client } from 'openapi-fetch';

declare const __GATEHOUSE_URL__: string;

/** A signed-in user of an example app: who they are and their CRM client. */
export interface Session {
  user: string;
  crm: Client<CrmPaths>;
  signOut(): Promise<void>;
}

/**
 * Signs the user in through Gatehouse (code + PKCE; the development IdP in the demo) and answers the
 * session, or undefined while the browser is on its way to the sign-in page. With `accounts`, the
 * session is narrowed to the accounts it names (a capability token, kept through every refresh).
 */
export async function session(
  clientId: string,
  scope: string,
  options: { accounts?: (crm: Client<CrmPaths>, user: string) => Promise<string[]> } = {},
): Promise<Session | undefined> {
  const broker = await Broker.discover({ issuer: __GATEHOUSE_URL__, clientId, via: location.origin });
  const signIn = { redirectUri: `${location.origin}/callback`, scope };
  if (location.pathname !== '/callback') {
    location.assign(await beginSignIn(broker, signIn));
    return undefined;
  }
  let signedIn: TokenSet = await completeSignIn(broker, new URL(location.href), signIn);
  history.replaceState(null, '', '/');
  const claims = JSON.parse(atob(signedIn.accessToken.split('.')[1] ?? '')) as {
    sub?: string;
    email?: string;
  };
  const user = claims.email ?? claims.sub ?? 'unknown';
  const clientOf = (tokens: RotatingTokens) =>
    createCrmClient({ baseUrl: __GATEHOUSE_URL__, tokens, request: broker.resourceOptions() });
  const accountIds = options.accounts
    ? await options.accounts(
        clientOf(new RotatingTokens(signedIn, () => Promise.reject(new Error('once')))),
        user,
      )
    : [];
  if (accountIds.length > 0 && signedIn.refreshToken !== undefined) {
    // The first token served only to learn the accounts; from here on the app holds the narrowed one.
    signedIn = await broker.refresh(signedIn.refreshToken, { accountIds });
  }
  const tokens = new RotatingTokens(signedIn, (refreshToken) => broker.refresh(refreshToken));
  return {
    user,
    crm: clientOf(tokens),
    async signOut() {
      await broker.revoke(tokens.current.refreshToken ?? tokens.current.accessToken);
      location.assign('/');
    },
  };
}
