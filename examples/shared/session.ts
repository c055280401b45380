import {
  beginSignIn,
  Broker,
  completeSignIn,
  createCrmClient,
  RotatingTokens,
  type CrmPaths,
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
 * session, or undefined while the browser is on its way to the sign-in page.
 */
export async function session(clientId: string, scope: string): Promise<Session | undefined> {
  const broker = await Broker.discover({ issuer: __GATEHOUSE_URL__, clientId, via: location.origin });
  const options = { redirectUri: `${location.origin}/callback`, scope };
  if (location.pathname !== '/callback') {
    location.assign(await beginSignIn(broker, options));
    return undefined;
  }
  const signedIn = await completeSignIn(broker, new URL(location.href), options);
  history.replaceState(null, '', '/');
  const tokens = new RotatingTokens(signedIn, (refreshToken) => broker.refresh(refreshToken));
  const claims = JSON.parse(atob(signedIn.accessToken.split('.')[1] ?? '')) as {
    sub?: string;
    email?: string;
  };
  return {
    user: claims.email ?? claims.sub ?? 'unknown',
    crm: createCrmClient({ baseUrl: __GATEHOUSE_URL__, tokens, request: broker.resourceOptions() }),
    async signOut() {
      await broker.revoke(tokens.current.refreshToken ?? tokens.current.accessToken);
      location.assign('/');
    },
  };
}
