import { relative, sep } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
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
import { governed, recordRefusalsBeforeHandler, type PipelineDeps, type Trail } from '../gateway/index.js';
import { callerWithScope } from './caller.js';
import {
  Closed,
  IdParams,
  type AdminTypeProvider,
  Open,
  Page,
  QueryChoice,
  QueryText,
  Reason,
  rejectInvalid,
} from './shapes.js';

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

const appId = /^[a-z][a-z0-9-]{0,62}$/;

const email = (description: string) =>
  Type.String({ maxLength: 254, pattern: z.regexes.email.source, description });
const reasonBody = Closed(
  { reason: Reason('reason: say why, 1 to 500 characters') },
  { description: 'send { reason }' },
);
const deployBody = Closed(
  {
    digest: Type.String({
      pattern: '^sha256:[0-9a-f]{64}$',
      description: 'digest: sha256: and 64 hex digits',
    }),
  },
  { description: 'send { digest }' },
);
const offboardBody = Closed(
  {
    user: email('user: the e-mail address of the user leaving'),
    transfer_to: Type.Optional(email('transfer_to: the e-mail address of the new owner')),
    reason: Reason('reason: say why, 1 to 500 characters'),
  },
  { description: 'send { user, transfer_to?, reason }' },
);
const previewBody = Closed(
  {
    user: email('user: the e-mail address of the user leaving'),
    transfer_to: Type.Optional(email('transfer_to: the e-mail address of the new owner')),
  },
  { description: 'send { user, transfer_to? }' },
);
/** A plan: a bare manifest, or `{ manifest }` (see planBody). */
const planShape = Open({}, { description: 'send the manifest as a JSON object' });
const appListQuery = Open({
  owner: QueryText({ maxLength: 200, description: 'owner must be given once' }),
  state: QueryChoice(appStatuses, `state must be one of ${appStatuses.join(', ')}`),
  class: QueryText({ pattern: '^[a-z]{1,32}$', description: 'class must be a data class such as pii' }),
  risk: QueryChoice(riskLevels, `risk must be one of ${riskLevels.join(', ')}`),
  unused: QueryText({ maxLength: 200, description: 'unused must be a number of days such as 30d' }),
  needs_review: QueryText({ maxLength: 200, description: 'needs_review must be given once' }),
  cursor: QueryText({ maxLength: 200, description: 'cursor must be given once' }),
  limit: QueryText({ pattern: '^[1-9][0-9]{0,3}$', description: 'limit must be a positive integer' }),
});
const sinceQuery = Open({
  since: QueryText({ maxLength: 200, description: 'since must be given once, such as 30d' }),
});
/** An app as the admin API shows it (catalog's viewOf); members beyond these are kept. */
const appView = Open({
  id: Type.String(),
  client_id: Type.String(),
  name: Type.String(),
  owner: Type.String(),
  state: Type.String(),
  scopes: Type.Array(Type.String()),
});
const changedAppView = Type.Intersect([appView, Open({ change: Type.String() })]);
const archived = Open({ file: Type.String() });

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

  const caller = (request: FastifyRequest, trail: Trail, ...anyOf: string[]) =>
    callerWithScope(deps, request, trail, 'app', ...anyOf);
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

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.apps', resourceType: 'app' }));

    const registerShape = { tags: ['apps'], body: planShape, response: { 201: appView } };
    scope.post('/admin/v1/apps', { schema: registerShape }, async (request, reply) => {
      const answer = await governed(deps, request, reply, 'admin.apps.register', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        rejectInvalid(request);
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

    const listShape = { tags: ['apps'], querystring: appListQuery, response: { 200: Page(appView) } };
    scope.get('/admin/v1/apps', { schema: listShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.list', async (trail) => {
        const principal = await caller(request, trail, 'maker', ...overseers);
        rejectInvalid(request);
        const query = appQuery(request.query);
        if (query.unusedDays !== undefined) await deps.refreshUsage();
        // A maker's inventory is their own apps, whatever owner they ask for.
        if (!oversees(principal)) query.owner = normaliseEmail(principal.email);
        const page = await catalog.queryApps(query);
        trail.reason = `${page.records.length} apps returned`;
        return { records: page.records.map((a) => viewOf(a)), next_cursor: page.next_cursor ?? null };
      }),
    );

    const showShape = {
      tags: ['apps'],
      params: IdParams,
      response: { 200: Type.Intersect([appView, Open({ history: Type.Array(Open()) })]) },
    };
    scope.get('/admin/v1/apps/:id', { schema: showShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.show', async (trail) => {
        const principal = await caller(request, trail, 'maker', ...overseers);
        rejectInvalid(request);
        const found = await visibleApp(principal, request.params.id, trail);
        trail.reason = `${found.id} is ${found.status}`;
        return viewOf(found, await catalog.history(found.id));
      }),
    );

    const manifestShape = {
      tags: ['apps'],
      params: IdParams,
      body: planShape,
      response: { 200: changedAppView },
    };
    scope.put('/admin/v1/apps/:id/manifest', { schema: manifestShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.update', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        rejectInvalid(request);
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
    // The body is bytes (a zip or gzip tar), so only the id and the answer have a declared shape.
    const bundleShape = { tags: ['apps'], params: IdParams, response: { 200: changedAppView } };
    scope.post(
      '/admin/v1/apps/:id/bundle',
      { bodyLimit: maxBundleBytes, schema: bundleShape },
      (request, reply) =>
        governed(deps, request, reply, 'admin.apps.bundle', async (trail) => {
          const principal = await caller(request, trail, 'maker', 'admin');
          rejectInvalid(request);
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

    const deployShape = {
      tags: ['apps'],
      params: IdParams,
      body: deployBody,
      response: {
        200: Open({ app_id: Type.String(), digest: Type.String(), approved: Type.Literal(true) }),
      },
    };
    scope.post('/admin/v1/apps/:id/deploy-check', { schema: deployShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.deploy_check', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        rejectInvalid(request);
        const { digest } = request.body;
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
    const stepShape = { tags: ['apps'], params: IdParams, body: reasonBody, response: { 200: appView } };
    for (const [step, { scopes, run }] of Object.entries(steps)) {
      scope.post(`/admin/v1/apps/:id/${step}`, { schema: stepShape }, (request, reply) =>
        governed(deps, request, reply, `admin.apps.${step}`, async (trail) => {
          const principal = await caller(request, trail, ...scopes);
          const found = await visibleApp(principal, request.params.id, trail);
          rejectInvalid(request);
          const reason = request.body.reason.trim();
          const changed = await run(found.id, { by: actorOf(principal), reason, requestId: request.id });
          trail.reason = `${found.status} -> ${changed.status}`;
          return viewOf(changed);
        }),
      );
    }

    // The owner may retire their own app (switching off is always safe); anything else needs admin.
    const retireShape = {
      tags: ['apps'],
      params: IdParams,
      body: reasonBody,
      response: {
        200: Type.Intersect([appView, Open({ secrets_removed: Type.Unknown(), archive: archived })]),
      },
    };
    scope.post('/admin/v1/apps/:id/retire', { schema: retireShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.retire', async (trail) => {
        const principal = await caller(request, trail, 'maker', 'admin');
        const found = await visibleApp(principal, request.params.id, trail);
        if (!principal.scopes.includes('admin') && found.owner !== normaliseEmail(principal.email)) {
          throw new AccessDenied('SCOPE_MISSING', 'retiring an app of someone else needs the admin scope', {
            scope: 'admin',
          });
        }
        rejectInvalid(request);
        const reason = request.body.reason.trim();
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

    const suggestShape = {
      tags: ['apps'],
      params: IdParams,
      querystring: sinceQuery,
      response: { 200: Open({ suggested: Type.Array(Type.Unknown()), held: Type.Array(Type.Unknown()) }) },
    };
    scope.get('/admin/v1/apps/:id/suggest-scopes', { schema: suggestShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.suggest_scopes', async (trail) => {
        const principal = await caller(request, trail, 'maker', ...overseers);
        const found = await visibleApp(principal, request.params.id, trail);
        rejectInvalid(request);
        const since = parseSince(request.query.since ?? '30d', new Date());
        const events = [];
        for await (const event of appEvents(deps.audit, found.id, since)) events.push(event);
        const suggestion = suggestScopes(found, events, deps.fieldsets, since);
        trail.reason = `${suggestion.suggested.length} of ${suggestion.held.length} scopes used`;
        return suggestion;
      }),
    );

    // The dry run of an offboarding: what would be suspended, transferred and revoked; changes nothing.
    const previewShape = {
      tags: ['apps'],
      body: previewBody,
      response: {
        200: Open({ apps: Type.Array(Type.Unknown()), grants: Type.Array(Type.Unknown()) }),
      },
    };
    scope.post('/admin/v1/offboard/preview', { schema: previewShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.offboard.preview', async (trail) => {
        await caller(request, trail, 'admin');
        trail.resourceType = 'user';
        rejectInvalid(request);
        const body = request.body;
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

    const offboardShape = {
      tags: ['apps'],
      body: offboardBody,
      response: { 200: Open({ apps: Type.Array(Type.Unknown()), archive: archived }) },
    };
    scope.post('/admin/v1/offboard', { schema: offboardShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.offboard', async (trail) => {
        const principal = await caller(request, trail, 'admin');
        trail.resourceType = 'user';
        rejectInvalid(request);
        const body = { ...request.body, reason: request.body.reason.trim() };
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
function planBody(record: Record<string, unknown>): { manifest: unknown } {
  if (!Object.hasOwn(record, 'manifest')) return { manifest: record };
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

/** The inventory's query string, already checked against its declared shape, as a catalog query. */
function appQuery(q: Static<typeof appListQuery>): AppQuery {
  const query: AppQuery = {};
  if (q.owner !== undefined) query.owner = q.owner;
  if (q.state !== undefined) query.state = q.state as AppQuery['state'];
  if (q.class !== undefined) query.dataClass = q.class;
  if (q.risk !== undefined) query.risk = q.risk as AppQuery['risk'];
  if (q.unused !== undefined) query.unusedDays = parseDays(q.unused);
  if (q.needs_review !== undefined) query.needsReview = q.needs_review === 'true';
  if (q.cursor !== undefined) query.cursor = q.cursor;
  if (q.limit !== undefined) query.limit = Number(q.limit);
  return query;
}
