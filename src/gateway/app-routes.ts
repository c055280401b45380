import { relative, sep } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  appEvents,
  appStatuses,
  bundleMediaTypes,
  maxBundleBytes,
  scanUploadedBundle,
  offboardUser,
  previewOffboard,
  parseDays,
  parseSince,
  retireApp,
  riskLevels,
  suggestScopes,
  viewOf,
  type Actor,
  type App,
  type AppQuery,
  normaliseEmail,
  type Lifecycle,
} from '../catalog/index.js';
import { AccessDenied, InputError, NotFound } from '../errors/index.js';
import type { Principal } from '../policy/index.js';
import type { SecretStore } from '../secrets/index.js';
import {
  authenticate,
  governed,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
  type Trail,
} from './pipeline.js';

export interface AppRouteDeps extends PipelineDeps {
  lifecycle: Lifecycle;
  secrets: SecretStore;
  /** Archives of retired apps and offboarded users go under `<dataDir>/archives`. */
  dataDir: string;
  revokeTokens(
    target: { appId?: string; userId?: string },
    options: { reason: string; actor: string; permanent?: boolean },
  ): Promise<unknown>;
  /** Brings last-use times up to date before an `unused` query. */
  refreshUsage(): Promise<unknown>;
  /** Scope → fieldset, for scope suggestions. */
  fieldsets: Readonly<Record<string, { readonly object: string; readonly fields: readonly string[] }>>;
  /** The apps holding a sign-in on a user's behalf, for the offboarding preview. */
  grantsOf(email: string): Promise<readonly { app_id: string; scope: string; last_used_at: number }[]>;
}

/** Who may see every app; a caller with only `maker` sees their own. */
const overseers = ['admin', 'review', 'audit:read'];

const deployBody = z.strictObject({ digest: z.string().regex(/^sha256:[0-9a-f]{64}$/) });
const reasonBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const offboardBody = z.strictObject({
  user: z.email(),
  transfer_to: z.email().optional(),
  reason: z.string().trim().min(1).max(500),
});
const previewBody = z.strictObject({ user: z.email(), transfer_to: z.email().optional() });
const appId = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * The catalog's admin API (CONTRACT.md "Admin": register, list, show, approve, suspend, retire), through
 * the console client. `maker` registers and changes one's own apps; `review` or `admin` approves and
 * denies (never an app one owns or registered); `admin` suspends, restores, retires and offboards.
 * Every call runs in governed(), so allowed and refused calls alike are in the audit trail, and each
 * lifecycle change also appends its own `app.*` event.
 *
 *   POST /admin/v1/apps                       manifest, or { manifest }   → 201 the app
 *   GET  /admin/v1/apps?owner&state&class&risk&unused&needs_review&limit&cursor
 *   GET  /admin/v1/apps/:id                   the app and its history
 *   PUT  /admin/v1/apps/:id/manifest          a new plan (a wider one waits for review)
 *   POST /admin/v1/apps/:id/bundle            the bundle (application/zip or gzip tar): scanned here
 *   POST /admin/v1/apps/:id/deploy-check      { digest }   → 200 approved, 409 BUNDLE_NOT_APPROVED
 *   POST /admin/v1/apps/:id/{approve|deny|suspend|restore|retire}   { reason }
 *   GET  /admin/v1/apps/:id/suggest-scopes?since=30d
 *   POST /admin/v1/offboard                   { user, transfer_to?, reason }
 */
export function registerAppRoutes(app: FastifyInstance, deps: AppRouteDeps): void {
  const { lifecycle } = deps;
  const { catalog } = lifecycle;

  const caller = async (request: FastifyRequest, trail: Trail, ...anyOf: string[]) => {
    trail.resourceType = 'app';
    const principal = await authenticate(deps, request, trail);
    const held = anyOf.filter((scope) => principal.scopes.includes(scope));
    if (held.length === 0) {
      throw new AccessDenied('SCOPE_MISSING', `this call needs the ${anyOf.join(' or ')} scope`, {
        scope: anyOf.join(' '),
      });
    }
    trail.scopes = held;
    return principal;
  };
  const actorOf = (principal: Principal): Actor => ({ id: principal.email, role: principal.role });
  const oversees = (principal: Principal) => overseers.some((s) => principal.scopes.includes(s));
  /** The app, if this caller may see it: a maker sees only their own (others are a 404, as in the gateway). */
  const visibleApp = async (principal: Principal, id: string, trail: Trail): Promise<App> => {
    trail.resourceId = id;
    const found = appId.test(id) ? await catalog.findApp(id) : undefined;
    if (!found || (!oversees(principal) && found.owner !== normaliseEmail(principal.email))) {
      throw new NotFound('no such app, or it is not visible to this caller');
    }
    return found;
  };

  void app.register(async (scope) => {
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.apps', resourceType: 'app' }));

    scope.post('/admin/v1/apps', async (request, reply) => {
      const answer = await governed(deps, request, reply, 'admin.apps.register', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const { manifest } = planBody(request.body);
        const registered = await lifecycle.register({
          manifest,
          by: actorOf(principal),
          admin: principal.scopes.includes('admin'),
          requestId: request.id,
        });
        trail.resourceId = registered.app.id;
        trail.reason = `registered as ${registered.app.status} (${registered.admission.decision})`;
        return viewOf(registered.app);
      });
      return reply.code(201).send(answer);
    });

    scope.get('/admin/v1/apps', (request, reply) =>
      governed(deps, request, reply, 'admin.apps.list', async (trail) => {
        const principal = await caller(request, trail, 'maker', ...overseers);
        const query = appQuery(request.query as Record<string, unknown>);
        if (query.unusedDays !== undefined) await deps.refreshUsage();
        // A maker's inventory is their own apps, whatever owner they ask for.
        if (!oversees(principal)) query.owner = normaliseEmail(principal.email);
        const page = await catalog.queryApps(query);
        trail.reason = `${page.records.length} apps returned`;
        return { records: page.records.map((a) => viewOf(a)), next_cursor: page.next_cursor ?? null };
      }),
    );

    scope.get<{ Params: { id: string } }>('/admin/v1/apps/:id', (request, reply) =>
      governed(deps, request, reply, 'admin.apps.show', async (trail) => {
        const principal = await caller(request, trail, 'maker', ...overseers);
        const found = await visibleApp(principal, request.params.id, trail);
        trail.reason = `${found.id} is ${found.status}`;
        return viewOf(found, await catalog.history(found.id));
      }),
    );

    scope.put<{ Params: { id: string } }>('/admin/v1/apps/:id/manifest', (request, reply) =>
      governed(deps, request, reply, 'admin.apps.update', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        const { manifest } = planBody(request.body);
        const updated = await lifecycle.update(found.id, {
          manifest,
          by: actorOf(principal),
          admin: principal.scopes.includes('admin'),
          requestId: request.id,
        });
        trail.reason = `plan ${updated.change ?? 'updated'}: ${updated.app.status} (${updated.admission.decision})`;
        return { ...viewOf(updated.app), change: updated.change ?? 'applied' };
      }),
    );

    // The bundle arrives as bytes and Gatehouse scans it: a scan summary a caller sends is never believed.
    scope.addContentTypeParser(
      Object.keys(bundleMediaTypes),
      { parseAs: 'buffer', bodyLimit: maxBundleBytes },
      (_request, body, done) => done(null, body),
    );
    scope.post<{ Params: { id: string } }>(
      '/admin/v1/apps/:id/bundle',
      { bodyLimit: maxBundleBytes },
      (request, reply) =>
        governed(deps, request, reply, 'admin.apps.bundle', async (trail) => {
          const principal = await caller(request, trail, 'maker', 'admin');
          const found = await visibleApp(principal, request.params.id, trail);
          const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          // Only the bundle media types are parsed as bytes; any other body is refused for its media type.
          const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
          const bundle = await scanUploadedBundle(bytes, mediaType);
          const updated = await lifecycle.submitBundle(found.id, bundle, {
            by: actorOf(principal),
            admin: principal.scopes.includes('admin'),
            requestId: request.id,
          });
          trail.reason = `bundle ${bundle.digest} scanned: ${updated.app.status} (${updated.admission.decision})`;
          return { ...viewOf(updated.app), change: updated.change ?? 'applied' };
        }),
    );

    scope.post<{ Params: { id: string } }>('/admin/v1/apps/:id/deploy-check', (request, reply) =>
      governed(deps, request, reply, 'admin.apps.deploy_check', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        const { digest } = parseBody(deployBody, request.body);
        const approved = await lifecycle.checkDeploy(found.id, digest);
        trail.reason = `deploy of ${digest} allowed`;
        return { app_id: approved.id, digest, approved: true };
      }),
    );

    const steps = {
      approve: { scopes: ['review', 'admin'], run: lifecycle.approve },
      deny: { scopes: ['review', 'admin'], run: lifecycle.deny },
      suspend: { scopes: ['admin'], run: lifecycle.suspendApp },
      restore: { scopes: ['admin'], run: lifecycle.restoreApp },
    } as const;
    for (const [step, { scopes, run }] of Object.entries(steps)) {
      scope.post<{ Params: { id: string } }>(`/admin/v1/apps/:id/${step}`, (request, reply) =>
        governed(deps, request, reply, `admin.apps.${step}`, async (trail) => {
          const principal = await caller(request, trail, ...scopes);
          const found = await visibleApp(principal, request.params.id, trail);
          const { reason } = parseBody(reasonBody, request.body);
          const changed = await run(found.id, { by: actorOf(principal), reason, requestId: request.id });
          trail.reason = `${found.status} -> ${changed.status}`;
          return viewOf(changed);
        }),
      );
    }

    // The owner may retire their own app (switching off is always safe); anything else needs admin.
    scope.post<{ Params: { id: string } }>('/admin/v1/apps/:id/retire', (request, reply) =>
      governed(deps, request, reply, 'admin.apps.retire', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        if (!principal.scopes.includes('admin') && found.owner !== normaliseEmail(principal.email)) {
          throw new AccessDenied('SCOPE_MISSING', 'retiring an app of someone else needs the admin scope', {
            scope: 'admin',
          });
        }
        const { reason } = parseBody(reasonBody, request.body);
        const report = await retireApp(
          { lifecycle, log: deps.audit, secrets: deps.secrets, dataDir: deps.dataDir },
          found.id,
          { by: actorOf(principal), reason, requestId: request.id },
        );
        trail.reason = `retired; ${report.archive.events} events archived`;
        return {
          ...viewOf(report.app),
          secrets_removed: report.secrets_removed,
          archive: inDataDir(deps.dataDir, report.archive),
        };
      }),
    );

    scope.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
      '/admin/v1/apps/:id/suggest-scopes',
      (request, reply) =>
        governed(deps, request, reply, 'admin.apps.suggest_scopes', async (trail) => {
          const principal = await caller(request, trail, 'maker', ...overseers);
          const found = await visibleApp(principal, request.params.id, trail);
          const since = parseSince(text(request.query.since, 'since') ?? '30d', new Date());
          const events = [];
          for await (const event of appEvents(deps.audit, found.id, since)) events.push(event);
          const suggestion = suggestScopes(found, events, deps.fieldsets, since);
          trail.reason = `${suggestion.suggested.length} of ${suggestion.held.length} scopes used`;
          return suggestion;
        }),
    );

    // The dry run of an offboarding: what would be suspended, transferred and revoked; changes nothing.
    scope.post('/admin/v1/offboard/preview', (request, reply) =>
      governed(deps, request, reply, 'admin.offboard.preview', async (trail) => {
        await caller(request, trail, 'admin');
        trail.resourceType = 'user';
        const body = parseBody(previewBody, request.body);
        trail.resourceId = body.user;
        const preview = await previewOffboard(
          { lifecycle, secrets: deps.secrets, grantsOf: deps.grantsOf },
          body.user,
          { transferTo: body.transfer_to },
        );
        trail.reason = `preview: ${preview.apps.length} apps, ${preview.grants.length} grants`;
        return preview;
      }),
    );

    scope.post('/admin/v1/offboard', (request, reply) =>
      governed(deps, request, reply, 'admin.offboard', async (trail) => {
        const principal = await caller(request, trail, 'admin');
        trail.resourceType = 'user';
        const body = parseBody(offboardBody, request.body);
        trail.resourceId = body.user;
        const report = await offboardUser(
          {
            lifecycle,
            log: deps.audit,
            secrets: deps.secrets,
            dataDir: deps.dataDir,
            revokeTokens: deps.revokeTokens,
          },
          body.user,
          { transferTo: body.transfer_to, by: actorOf(principal), reason: body.reason },
        );
        trail.reason = `${report.apps.length} apps; ${report.archive.events} events archived`;
        return { ...report, archive: inDataDir(deps.dataDir, report.archive) };
      }),
    );
  });
}

/** An archive as a caller may see it: named inside the data dir, never by the server's absolute path. */
function inDataDir<T extends { file: string }>(dataDir: string, archive: T): T {
  return { ...archive, file: relative(dataDir, archive.file).split(sep).join('/') };
}

/**
 * A bare manifest, or `{ manifest }`. A `scan` summary is refused: Gatehouse scans the bundle itself
 * (POST /admin/v1/apps/:id/bundle), so a caller cannot vouch for their own bundle.
 */
function planBody(body: unknown): { manifest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InputError('send the manifest as a JSON object');
  }
  const record = body as Record<string, unknown>;
  if (!Object.hasOwn(record, 'manifest')) return { manifest: body };
  if (Object.hasOwn(record, 'scan')) {
    throw new InputError(
      'a scan summary is not accepted: upload the bundle to POST /admin/v1/apps/{id}/bundle and Gatehouse scans it',
      { parameter: 'scan' },
    );
  }
  const extra = Object.keys(record).filter((key) => key !== 'manifest');
  if (extra.length > 0) throw new InputError(`unknown field(s) ${extra.join(', ')}; send { manifest }`);
  return { manifest: record.manifest };
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.map(String).join('.') || 'body';
    throw new InputError(`${where}: ${issue?.message ?? 'invalid'}`, { parameter: where });
  }
  return parsed.data;
}

function text(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 200) {
    throw new InputError(`${name} must be given once`, { parameter: name });
  }
  return value;
}

/** The inventory's query string: every filter optional, each checked before it reaches the store. */
function appQuery(q: Record<string, unknown>): AppQuery {
  const query: AppQuery = {};
  const owner = text(q.owner, 'owner');
  if (owner !== undefined) query.owner = owner;
  const state = text(q.state, 'state');
  if (state !== undefined) {
    if (!(appStatuses as readonly string[]).includes(state)) {
      throw new InputError(`state must be one of ${appStatuses.join(', ')}`, { parameter: 'state' });
    }
    query.state = state as AppQuery['state'];
  }
  const dataClass = text(q.class, 'class');
  if (dataClass !== undefined) {
    if (!/^[a-z]{1,32}$/.test(dataClass))
      throw new InputError('class must be a data class such as pii', { parameter: 'class' });
    query.dataClass = dataClass;
  }
  const risk = text(q.risk, 'risk');
  if (risk !== undefined) {
    if (!(riskLevels as readonly string[]).includes(risk)) {
      throw new InputError(`risk must be one of ${riskLevels.join(', ')}`, { parameter: 'risk' });
    }
    query.risk = risk as AppQuery['risk'];
  }
  const unused = text(q.unused, 'unused');
  if (unused !== undefined) query.unusedDays = parseDays(unused);
  const needsReview = text(q.needs_review, 'needs_review');
  if (needsReview !== undefined) query.needsReview = needsReview === 'true';
  const cursor = text(q.cursor, 'cursor');
  if (cursor !== undefined) query.cursor = cursor;
  const limit = text(q.limit, 'limit');
  if (limit !== undefined) {
    if (!/^[1-9][0-9]{0,3}$/.test(limit))
      throw new InputError('limit must be a positive integer', { parameter: 'limit' });
    query.limit = Number(limit);
  }
  return query;
}
