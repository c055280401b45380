import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Provider } from 'oidc-provider';
import providerContext from 'oidc-provider/lib/helpers/als.js';

/**
 * Serves `provider` under the path of its issuer (e.g. `/idp`) inside a Fastify app, the way express's
 * `app.use('/idp', provider.callback())` would: the reply is hijacked, the provider gets the raw
 * request with the prefix stripped from `url` and the full path in `originalUrl` (from which it derives
 * the mount path of the URLs it emits), and the raw response.
 */
export function mountProvider(app: FastifyInstance, provider: Provider): void {
  const issuer = new URL(provider.issuer);
  const prefix = issuer.pathname.replace(/\/$/, '');
  if (!prefix) throw new TypeError('the development IdP needs an issuer with a path, e.g. <publicUrl>/idp');
  const callback = provider.callback();
  let running = 0;

  async function oidcProvider(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.hijack();
    const raw = request.raw as IncomingMessage & { originalUrl?: string };
    const original = raw.url ?? prefix;
    const rest = original.slice(prefix.length);
    raw.originalUrl = original;
    raw.url = rest.startsWith('/') ? rest : `/${rest}`;
    // The provider trusts these two headers (proxy = true) and we set them from the configured issuer,
    // so the URLs it publishes never depend on a client-chosen Host or X-Forwarded-* header.
    raw.headers['x-forwarded-host'] = issuer.host;
    raw.headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1);
    delete raw.headers['x-forwarded-for'];
    reply.raw.setHeader('x-request-id', request.id);
    running += 1;
    try {
      await callback(raw, reply.raw);
    } finally {
      // The provider runs each request in its AsyncLocalStorage, and on Node 20 a storage once run keeps
      // promise hooks on in the whole process: every promise of every gateway request paid for them
      // after one JWKS fetch. Disabled when no IdP request runs; the next one enables it again.
      running -= 1;
      if (running === 0) providerContext.disable();
    }
  }

  void app.register(async function devIdp(child) {
    // oidc-provider reads (and limits) request bodies itself: leave the stream unread here.
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', (_request, _payload, done) => done(null));
    child.all(prefix, oidcProvider);
    child.all(`${prefix}/*`, oidcProvider);
  });
}
