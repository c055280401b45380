import { GatehouseProblem, PolicyDenied, RateLimited, SignInRequired, TokenRevoked } from '@gatehouse/sdk';

/** A refusal in plain words, with what to do and the request id to quote. */
export function ErrorBanner({ error }: { error: unknown }) {
  if (error === undefined) return null;
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof TokenRevoked) text = 'Your access to this app was revoked. Sign in again to continue.';
  else if (error instanceof SignInRequired) text = 'Your sign-in has ended. Sign in again to continue.';
  else if (error instanceof RateLimited)
    text = `Too many requests: try again in ${error.retryAfterSeconds} s.`;
  else if (error instanceof PolicyDenied) text = `Not allowed for this app: ${error.message}.`;
  const kind = error instanceof GatehouseProblem ? error.name : 'Error';
  return (
    <p className="error" role="alert" data-kind={kind}>
      <strong>{kind}:</strong> {text}
      {error instanceof GatehouseProblem && error.requestId ? (
        <span className="muted"> (request {error.requestId})</span>
      ) : null}
    </p>
  );
}
