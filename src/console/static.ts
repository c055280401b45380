import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFound } from '../errors/index.js';

/**
 * The console's CSP: its own scripts only, no inline script, data only from Gatehouse itself, never
 * framed. Inline styles are allowed because the component library sets its theme as CSS variables.
 */
const consoleCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The built console (`console/dist` at the package root), if `npm run build` made it. */
function consoleDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/console → ../../console/dist; the build output sits at dist/console.
  return [resolve(here, '../../console/dist'), resolve(here, '../../../console/dist')].find((dir) =>
    existsSync(join(dir, 'index.html')),
  );
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', consoleCsp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Serves the console at /console/ (CONTRACT.md: `GET /` redirects there). Every path under it that is
 * not a built file answers index.html, so the browser's router owns deep links such as /console/my-apps.
 */
export async function registerConsole(app: FastifyInstance, root = consoleDir()): Promise<void> {
  app.get('/', (_request, reply) => reply.redirect('/console/'));
  app.get('/console', (_request, reply) => reply.redirect('/console/'));
  if (root === undefined) {
    app.get('/console/*', async () => {
      throw new NotFound('the console is not built on this server; run `npm run build` and restart');
    });
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    // Files are listed once at start: a request never reaches the file system for a path not built.
    wildcard: false,
    index: false,
    setHeaders(res, path) {
      res.setHeader('content-security-policy', consoleCsp);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      // Hashed asset names never change content; the page itself is always asked for again.
      res.setHeader(
        'cache-control',
        path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    // A file name that was not built is a 404, not the page: a stale asset link must not get HTML.
    if (/\.[A-Za-z0-9]+$/.test(request.url.split('?')[0] ?? '')) throw new NotFound('no such console file');
    return secure(reply).header('cache-control', 'no-cache').sendFile('index.html', root);
  };
  app.get('/console/', page);
  app.get('/console/*', page);
}
