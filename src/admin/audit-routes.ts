import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors/index.js';
import { governed, type PipelineDeps } from '../gateway/index.js';
import { callerWithScope } from './caller.js';
import { Nullable, Open, QueryText, rejectInvalid, type AdminTypeProvider } from './shapes.js';

/**
 * The auditor's read API over the Merkle log (CONTRACT.md "Audit"). It runs the same pipeline as CRM
 * reads: every look at the audit trail is itself recorded in it.
 */
export function registerAuditRoutes(plain: FastifyInstance, deps: PipelineDeps): void {
  const { audit } = deps;
  const app = plain.withTypeProvider<AdminTypeProvider>();

  const eventsShape = {
    tags: ['audit'],
    querystring: Open({
      request_id: identifier('request_id'),
      app_id: identifier('app_id'),
      since: QueryText({ maxLength: 64, description: 'since must be an ISO 8601 timestamp' }),
      cursor: identifier('cursor'),
      limit: count('limit'),
    }),
    // Events are kept as recorded: each still hashes to its leaf (verifiers rely on every member).
    response: {
      200: Open({
        records: Type.Array(Type.Unknown()),
        tombstones: Type.Optional(Type.Unknown()),
        next_cursor: Nullable(Type.String()),
      }),
    },
  };
  app.get('/audit/v1/events', { schema: eventsShape }, (request, reply) =>
    governed(deps, request, reply, 'audit.events', async (trail) => {
      await callerWithScope(deps, request, trail, 'audit_event', 'audit:read');
      rejectInvalid(request);
      const q = request.query;
      const page = await audit.events({
        request_id: q.request_id,
        app_id: q.app_id,
        since: optionalTimestamp(q.since),
        cursor: q.cursor,
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

  const noteShape = {
    tags: ['audit'],
    response: { 200: Type.String({ description: 'the signed checkpoint (C2SP signed note)' }) },
  };
  app.get('/audit/v1/checkpoint', { schema: noteShape }, async (request, reply) => {
    const note = await governed(deps, request, reply, 'audit.checkpoint', async (trail) => {
      await callerWithScope(deps, request, trail, 'audit_checkpoint', 'audit:read');
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
    const proofShape = {
      tags: ['audit'],
      querystring: Open(Object.fromEntries(params.map((name) => [name, Type.String(countOptions(name))]))),
      response: { 200: Open({ hashes: Type.Array(Type.String()) }) },
    };
    app.get(`/audit/v1/proof/${kind}`, { schema: proofShape }, (request, reply) =>
      governed(deps, request, reply, 'audit.proof', async (trail) => {
        await callerWithScope(deps, request, trail, 'audit_proof', 'audit:read');
        rejectInvalid(request);
        const query = request.query as Record<string, string>;
        const [a, b] = params.map((name) => Number(query[name])) as [number, number];
        trail.resourceId = `${kind}:${a}:${b}`;
        trail.reason = 'proof returned';
        return { hashes: await prove(a, b) };
      }),
    );
  }
}

const identifier = (name: string) =>
  QueryText({ pattern: '^[A-Za-z0-9._:@-]{1,128}$', description: `${name} is not a valid identifier` });

const countOptions = (name: string) => ({
  pattern: '^(0|[1-9][0-9]{0,14})$',
  description: `${name} must be a non-negative integer`,
});
const count = (name: string) => QueryText(countOptions(name));

function optionalTimestamp(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Number.isNaN(Date.parse(value))) {
    throw new InputError('since must be an ISO 8601 timestamp', { parameter: 'since' });
  }
  return new Date(value).toISOString();
}

/** A count already shaped as digits, within 1 and `max`. */
function optionalCount(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const counted = Number(value);
  if (counted < 1 || counted > max)
    throw new InputError(`${name} must be between 1 and ${max}`, { parameter: name });
  return counted;
}
