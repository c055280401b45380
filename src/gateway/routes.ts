import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { objectFromPlural, type CrmConnector, type CrmObject } from '../crm/index.js';
import { InputError, NotFound } from '../errors/index.js';
import { authenticate, governed, type PipelineDeps, type Trail } from './pipeline.js';
import { fetchRecord, parseFilters, planRead, protectRecord } from './stages.js';

export interface GatewayDeps extends PipelineDeps {
  config: Config;
  crm: CrmConnector;
}

const fieldName = /^[a-z_]{1,64}$/;
const cursorPattern = /^[A-Za-z0-9_-]{1,256}$/;

export function registerGatewayRoutes(app: FastifyInstance, deps: GatewayDeps): void {
  const { config, crm } = deps;

  app.get<{ Params: { plural: string; id: string }; Querystring: Record<string, unknown> }>(
    '/crm/v1/:plural/:id',
    (request) =>
      governed(deps, request, 'crm.read', async (trail) => {
        trail.resourceId = request.params.id;
        const principal = await authenticate(deps, request, trail);
        const object = objectOf(request.params.plural, trail);
        const query = readQuery(request.query, ['fields']);
        const plan = planRead(config, principal, object, query.fields);
        trail.scopes = plan.scopes;
        const record = await fetchRecord(crm, plan, request.params.id);
        trail.reason = 'record returned';
        return protectRecord(config, principal, object, record);
      }),
  );

  app.get<{ Params: { plural: string }; Querystring: Record<string, unknown> }>('/crm/v1/:plural', (request) =>
    governed(deps, request, 'crm.list', async (trail) => {
      const principal = await authenticate(deps, request, trail);
      const object = objectOf(request.params.plural, trail);
      const query = readQuery(request.query, ['fields', 'filter', 'limit', 'cursor']);
      const limit = query.limit ?? config.gateway.defaultPageSize;
      if (limit > config.gateway.maxPageSize) {
        throw new InputError(`limit must be at most ${config.gateway.maxPageSize}`, { parameter: 'limit' });
      }
      const plan = planRead(config, principal, object, query.fields);
      trail.scopes = plan.scopes;
      const where = [...plan.where, ...parseFilters(config, principal, plan, query.filter)];
      const page = await crm.query(object, { fields: plan.fields, where, limit, cursor: query.cursor });
      trail.reason = `${page.records.length} records returned`;
      return {
        records: page.records.map((record) => protectRecord(config, principal, object, record)),
        next_cursor: page.nextCursor ?? null,
      };
    }),
  );
}

function objectOf(plural: string, trail: Trail): CrmObject {
  const object = objectFromPlural(plural);
  trail.resourceType = object ?? plural.slice(0, 64);
  if (!object) throw new NotFound('no such CRM object; use accounts, contacts, opportunities or notes');
  return object;
}

interface ReadQuery {
  fields?: string[];
  filter: string[];
  limit?: number;
  cursor?: string;
}

/** Parses untrusted query parameters; an unknown or malformed parameter is a 422 naming it. */
function readQuery(query: Record<string, unknown>, allowed: readonly string[]): ReadQuery {
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) {
      throw new InputError(`unknown query parameter ${key.slice(0, 64)}; allowed: ${allowed.join(', ')}`, {
        parameter: key.slice(0, 64),
      });
    }
  }
  const single = (key: string): string | undefined => {
    const value = query[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new InputError(`${key} may be given once`, { parameter: key });
    return value;
  };
  const out: ReadQuery = { filter: [] };
  const fields = single('fields');
  if (fields !== undefined) {
    const names = fields.split(',').filter(Boolean);
    if (names.length === 0 || names.length > 64 || !names.every((name) => fieldName.test(name))) {
      throw new InputError('fields must be a comma-separated list of field names', { parameter: 'fields' });
    }
    out.fields = names;
  }
  const limit = single('limit');
  if (limit !== undefined) {
    if (!/^[1-9][0-9]{0,5}$/.test(limit)) throw new InputError('limit must be a positive integer', { parameter: 'limit' });
    out.limit = Number(limit);
  }
  const cursor = single('cursor');
  if (cursor !== undefined) {
    if (!cursorPattern.test(cursor)) throw new InputError('cursor is not one this gateway issued', { parameter: 'cursor' });
    out.cursor = cursor;
  }
  const filter = query.filter;
  if (filter !== undefined) {
    out.filter = (Array.isArray(filter) ? filter : [filter]).map(String);
    if (out.filter.length > 8) throw new InputError('at most 8 filters', { parameter: 'filter' });
  }
  return out;
}

