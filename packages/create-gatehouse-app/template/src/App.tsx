import {
  beginSignIn,
  Broker,
  completeSignIn,
  createCrmClient,
  GatehouseProblem,
  RotatingTokens,
} from '@gatehouse/sdk';
import { useEffect, useState } from 'react';

declare const __GATEHOUSE_URL__: string;

// Ask for the scopes of manifest.json and no more; the consent screen shows them to the user.
const scope = 'read:account.basic';

async function signIn() {
  const broker = await Broker.discover({
    issuer: __GATEHOUSE_URL__,
    clientId: '__APP_NAME__',
    via: location.origin,
  });
  const options = { redirectUri: `${location.origin}/callback`, scope };
  if (location.pathname !== '/callback') {
    location.assign(await beginSignIn(broker, options));
    return undefined;
  }
  const tokens = new RotatingTokens(await completeSignIn(broker, new URL(location.href), options), (rt) =>
    broker.refresh(rt),
  );
  history.replaceState(null, '', '/');
  return createCrmClient({ baseUrl: __GATEHOUSE_URL__, tokens, request: broker.resourceOptions() });
}

let started: ReturnType<typeof signIn> | undefined;

export function App() {
  const [names, setNames] = useState<string[]>([]);
  const [error, setError] = useState<string>();

  useEffect(() => {
    started ??= signIn();
    started
      .then(async (crm) => {
        if (!crm) return;
        const { data } = await crm.GET('/crm/v1/accounts', {
          params: { query: { fields: ['name'], limit: 10 } },
        });
        setNames((data?.records ?? []).map((account) => account.name ?? ''));
      })
      .catch((failure: unknown) =>
        setError(
          failure instanceof GatehouseProblem ? `${failure.name}: ${failure.message}` : String(failure),
        ),
      );
  }, []);

  return (
    <main>
      <h1>__APP_NAME__</h1>
      {error ? <p role="alert">{error}</p> : null}
      <ul>
        {names.map((name) => (
          <li key={name}>{name}</li>
        ))}
      </ul>
    </main>
  );
}
