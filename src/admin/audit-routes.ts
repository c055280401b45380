import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors/index.js';
import { authenticate, governed, requireScope, type PipelineDeps } from '../gateway/index.js';

/**
 * The auditor's read API over the Merkle log (CONTRACT.md "Audit"). It runs the same pipeline as CRM
 * reads: every look at the audit trail is itself recorded in it.
 */
export function registerAuditRoutes(app: FastifyInstance, deps: PipelineDeps): void {
  const { audit } = deps;

  app.get<{ Querystring: Record<string, string | undefined> }>('/audit/v1/events', (request, reply) =>
    governed(deps, request, reply, 'audit.events', async (trail) => {
      trail.resourceType = 'audit_event';
      requireScope(await authenticate(deps, request, trail), 'audit:read', trail);
      const q = request.query;
      const page = await audit.events({
        request_id: optionalText(q.request_id, 'request_id'),
        app_id: optionalText(q.app_id, 'app_id'),
        since: optionalTimestamp(q.since),
        cursor: optionalText(q.cursor, 'cursor'),
        limit: optionalCount(q.limit, 'limit', 1000),
      });
      trail.reason = `${page.records.length} events returned`;
      // Pruned and pseudonymised events come apart: every record's event still hashes to its leaf hash.
      return {
        records: page.records,
        ...(page.tombstones && { tombstones: page.tombstones }),
        next_cursor: page.next_cursor ?? null,
      };
    }),
  );

  app.get('/audit/v1/checkpoint', async (request, reply) => {
    const note = await governed(deps, request, reply, 'audit.checkpoint', async (trail) => {
      trail.resourceType = 'audit_checkpoint';
      requireScope(await authenticate(deps, request, trail), 'audit:read', trail);
      trail.reason = 'checkpoint returned';
      // The latest scheduled checkpoint: a GET signs nothing (a signature per request proves nothing more).
      return audit.publishedCheckpoint();
    });
    return reply.type('text/plain; charset=utf-8').send(note);
  });

  // Both proofs take two counts and answer { hashes }; one route shape serves them.
  const proofs = {
    inclusion: { params: ['index', 'size'], prove: (a: number, b: number) => audit.inclusionProof(a, b) },
    consistency: { params: ['from', 'to'], prove: (a: number, b: number) => audit.consistencyProof(a, b) },
  } as const;
  for (const [kind, { params, prove }] of Object.entries(proofs)) {
    app.get<{ Querystring: Record<string, string | undefined> }>(
      `/audit/v1/proof/${kind}`,
      (request, reply) =>
        governed(deps, request, reply, 'audit.proof', async (trail) => {
          trail.resourceType = 'audit_proof';
          requireScope(await authenticate(deps, request, trail), 'audit:read', trail);
          const [a, b] = params.map((name) => requiredCount(request.query[name], name)) as [number, number];
          trail.resourceId = `${kind}:${a}:${b}`;
          trail.reason = 'proof returned';
          return { hashes: await prove(a, b) };
        }),
    );
  }
}

function optionalText(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(value)) {
    throw new InputError(`${name} is not a valid identifier`, { parameter: name });
  }
  return value;
}

function optionalTimestamp(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new InputError('since must be an ISO 8601 timestamp', { parameter: 'since' });
  }
  return new Date(value).toISOString();
}

function optionalCount(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const count = requiredCount(value, name);
  if (count < 1 || count > max)
    throw new InputError(`${name} must be between 1 and ${max}`, { parameter: name });
  return count;
}

function requiredCount(value: unknown, name: string): number {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,14})$/.test(value)) {
    throw new InputError(`${name} must be a non-negative integer`, { parameter: name });
  }
  return Number(value);
}
