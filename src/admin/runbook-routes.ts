import type { FastifyInstance } from 'fastify';
import { normaliseEmail, type App, type HistoryEntry } from '../catalog/index.js';
import type { ResidencyConfig } from '../config/index.js';
import { NotFound } from '../errors/index.js';
import { governed, recordRefusalsBeforeHandler, type PipelineDeps } from '../gateway/index.js';
import { buildRunbook, runbookHtml, runbookMarkdown, type RunbookIncident } from '../compliance/index.js';
import { callerWithScope } from './caller.js';
import { IdParams, Open, QueryChoice, rejectInvalid, type AdminTypeProvider } from './shapes.js';

export interface RunbookRouteDeps extends PipelineDeps {
  findApp(id: string): Promise<App | undefined>;
  history(appId: string): Promise<readonly HistoryEntry[]>;
  /** The app's incidents, newest first (detection's desk). */
  incidents(appId: string): Promise<readonly RunbookIncident[]>;
  fieldsets: Readonly<Record<string, { readonly object: string; readonly fields: readonly string[] }>>;
  fieldMeta(object: string): ReadonlyMap<string, { label: string; dataClass: string }>;
  residency: ResidencyConfig;
}

/** Who may read any app's runbook; a maker reads those of their own apps. */
const overseers = ['admin', 'review', 'audit:read'];
const appId = /^[a-z][a-z0-9-]{0,62}$/;
const formats = {
  json: 'application/json; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
} as const;

/**
 * The app's runbook for the console and `gatehouse compliance runbook`, built from live state on each
 * call and audited like every admin call:
 *
 *   GET /admin/v1/apps/:id/runbook?format=json|md|html
 */
export function registerRunbookRoutes(app: FastifyInstance, deps: RunbookRouteDeps): void {
  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.apps.runbook', resourceType: 'app' }));
    const shape = {
      tags: ['apps'],
      params: IdParams,
      querystring: Open({
        format: QueryChoice(Object.keys(formats), 'format must be json, md or html'),
      }),
      // As JSON; md and html answer the same runbook as text.
      response: { 200: Open({}, { description: 'the runbook' }) },
    };
    scope.get('/admin/v1/apps/:id/runbook', { schema: shape }, async (request, reply) => {
      const body = await governed(deps, request, reply, 'admin.apps.runbook', async (trail) => {
        trail.resourceId = request.params.id;
        const principal = await callerWithScope(deps, request, trail, 'app', 'maker', ...overseers);
        rejectInvalid(request);
        const format = request.query.format ?? 'json';
        const found = appId.test(request.params.id) ? await deps.findApp(request.params.id) : undefined;
        const oversees = overseers.some((s) => principal.scopes.includes(s));
        if (!found || (!oversees && found.owner !== normaliseEmail(principal.email))) {
          throw new NotFound('no such app, or it is not visible to this caller');
        }
        const runbook = buildRunbook({
          app: found,
          history: await deps.history(found.id),
          incidents: await deps.incidents(found.id),
          fieldsets: deps.fieldsets,
          fieldMeta: deps.fieldMeta,
          residency: deps.residency,
          now: new Date(),
        });
        trail.reason = `runbook of ${found.id} (${format})`;
        reply.type(formats[format as keyof typeof formats]);
        return format === 'md'
          ? runbookMarkdown(runbook)
          : format === 'html'
            ? runbookHtml(runbook)
            : runbook;
      });
      return body;
    });
  });
}
