// oidc-provider ships no type definitions and @types/oidc-provider is not a dependency: this declares
// the small surface the development IdP uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    /** Koa's `proxy`: trust X-Forwarded-Host and X-Forwarded-Proto. */
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
  export default Provider;
}

declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';

  /** The storage the provider runs each request in (its Koa context). */
  const providerContext: AsyncLocalStorage<unknown>;
  export default providerContext;
}
