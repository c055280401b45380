import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { GatehouseError, OAuthError, toProblem } from '../errors/index.js';
import type { Broker } from './broker.js';

const formType = 'application/x-www-form-urlencoded';

/** Discovery, JWKS and the token endpoint. Registers a form parser unless the app has one. */
export function registerBrokerRoutes(app: FastifyInstance, broker: Broker): void {
  void app.register(async function brokerRoutes(child) {
    if (!child.hasContentTypeParser(formType)) await child.register(formbody);

    child.get('/.well-known/oauth-authorization-server', async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').send(broker.metadata),
    );
    child.get('/.well-known/jwks.json', async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').send(broker.jwks),
    );

    child.post('/oauth/token', async (request, reply) => {
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      try {
        const contentType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
        if (contentType !== formType || typeof request.body !== 'object' || request.body === null) {
          throw new OAuthError('OAUTH_INVALID_REQUEST', `send the token request as ${formType}`);
        }
        return reply.send(await broker.exchangeToken(request.body as Record<string, unknown>));
      } catch (error) {
        // OAuth errors in both shapes (RFC 6749 §5.2 members inside problem+json); anything
        // unexpected goes to the app's error handler.
        if (!(error instanceof GatehouseError)) throw error;
        const problem = toProblem(error, request.id);
        request.log.info({ code: problem.code }, 'token request refused');
        if (problem.status === 503) reply.header('retry-after', '5');
        return reply.code(problem.status).type('application/problem+json').send(problem);
      }
    });
  });
}
