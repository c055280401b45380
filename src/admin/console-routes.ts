import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AccessDenied, NotFound } from '../errors/index.js';
import {
  authenticate,
  governed,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
  type Trail,
} from '../gateway/index.js';
import { dataClasses, type AdmissionResult, type Principal } from '../policy/index.js';
import { callerWithScope } from './caller.js';
import { IdParams, Nullable, Open, Page, rejectInvalid, type AdminTypeProvider } from './shapes.js';

/** An app's public face, for the user who let it act on their behalf. */
export interface GrantedApp {
  readonly name: string;
  readonly purpose: string | undefined;
  readonly status: string;
}

export interface ConsoleRouteDeps extends PipelineDeps {
  /** The apps holding access on this user's behalf (live refresh-token families). */
  grantsOf(user: {
    sub: string;
    email: string;
  }): Promise<readonly { app_id: string; scope: string; last_used_at: number; expires_at: number }[]>;
  /** Every token of one app for one user; holds on every node within a second. */
  revokeGrant(appId: string, user: string, how: { reason: string; actor: string }): Promise<unknown>;
  findApp(appId: string): Promise<GrantedApp | undefined>;
  /** The admission decision `policy check` gives, on the library in force; changes nothing. */
  judge(manifest: unknown): Promise<AdmissionResult>;
  /** Scope → fieldset, so a user sees in plain fields what an app can read. */
  fieldsets: Readonly<Record<string, { readonly object: string; readonly fields: readonly string[] }>>;
  /** The consent purpose vocabulary a plan's consent_purpose names one of. */
  consentPurposes: readonly string[];
}

/** The console's duties, by the platform scope that grants each (CONTRACT.md "Tokens"). */
const duties = { maker: 'maker', review: 'reviewer', 'audit:read': 'auditor', admin: 'admin' } as const;
const appId = /^[a-z][a-z0-9-]{0,62}$/;
const strings = Type.Array(Type.String());
const identity = Open({
  sub: Type.String(),
  email: Type.String(),
  role: Type.String(),
  scopes: strings,
  duties: strings,
});
const grant = Open({
  app_id: Type.String(),
  name: Type.String(),
  purpose: Nullable(Type.String()),
  status: Type.String(),
  scopes: strings,
  fields: Type.Unknown(),
  last_used_at: Type.String(),
  expires_at: Type.String(),
});
const admission = Open({
  decision: Type.String(),
  rules: Type.Array(Open({ id: Type.String(), effect: Type.String() })),
  errors: Type.Array(Type.Unknown()),
  risk_score: Nullable(Type.Number()),
  data_classes: Type.Array(Type.Unknown()),
  policy_version: Type.String(),
});

/**
 * The console's own calls, for any console sign-in (every role holds `maker`): who am I, the apps
 * acting on my behalf and their revocation, and the admission verdict of a plan being typed.
 *
 *   GET  /admin/v1/me                        { sub, email, role, scopes, duties }
 *   GET  /admin/v1/me/apps                   { records: [{ app_id, name, scopes, fields, last_used_at, ... }] }
 *   POST /admin/v1/me/apps/:id/revoke        every token of that app for me, at once
 *   GET  /admin/v1/admission                 what a plan may name: scopes and their fields, data classes, purposes
 *   POST /admin/v1/admission                 a manifest → { decision, rules, errors, risk_score, policy_version }
 *   GET  /audit/v1/public-key                the checkpoints' verifier key (signed-note form), text/plain
 */
export function registerConsoleRoutes(app: FastifyInstance, deps: ConsoleRouteDeps): void {
  // Platform scopes come only from the console client's sign-in, so an app's token never gets here.
  const signedIn = async (request: FastifyRequest, trail: Trail, resourceType: string) => {
    trail.resourceType = resourceType;
    const principal = await authenticate(deps, request, trail);
    const held = principal.scopes.filter((scope) => Object.hasOwn(duties, scope));
    if (held.length === 0) {
      throw new AccessDenied('SCOPE_MISSING', 'this call needs a console sign-in (the maker scope)', {
        scope: 'maker',
      });
    }
    trail.scopes = held;
    return principal;
  };

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.console', resourceType: 'user' }));

    scope.get(
      '/admin/v1/me',
      { schema: { tags: ['console'], response: { 200: identity } } },
      (request, reply) =>
        governed(deps, request, reply, 'admin.me.show', async (trail) => {
          const principal = await signedIn(request, trail, 'user');
          trail.resourceId = principal.email;
          trail.reason = 'identity returned';
          return whoami(principal);
        }),
    );

    const grantsShape = { tags: ['console'], response: { 200: Page(grant) } };
    scope.get('/admin/v1/me/apps', { schema: grantsShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.me.apps', async (trail) => {
        const principal = await signedIn(request, trail, 'user');
        trail.resourceId = principal.email;
        const grants = await deps.grantsOf({ sub: principal.userId, email: principal.email });
        const records = [];
        for (const grant of grants) {
          // The console's own sign-in is not an app acting for the user: signing out ends it.
          if (grant.app_id === principal.appId) continue;
          const found = await deps.findApp(grant.app_id);
          const scopes = grant.scope.split(' ').filter(Boolean);
          records.push({
            app_id: grant.app_id,
            name: found?.name ?? grant.app_id,
            purpose: found?.purpose ?? null,
            status: found?.status ?? 'unknown',
            scopes,
            fields: fieldsOf(scopes, deps.fieldsets),
            last_used_at: new Date(grant.last_used_at * 1000).toISOString(),
            expires_at: new Date(grant.expires_at * 1000).toISOString(),
          });
        }
        trail.reason = `${records.length} apps hold access`;
        return { records, next_cursor: null };
      }),
    );

    const revokeShape = {
      tags: ['console'],
      params: IdParams,
      response: { 200: Open({ app_id: Type.String(), revoked: Type.Boolean() }) },
    };
    scope.post('/admin/v1/me/apps/:id/revoke', { schema: revokeShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.me.revoke', async (trail) => {
        const principal = await signedIn(request, trail, 'app');
        rejectInvalid(request);
        const id = request.params.id;
        trail.resourceId = id;
        if (!appId.test(id) || !(await deps.findApp(id))) throw new NotFound('no such app');
        await deps.revokeGrant(id, principal.email, {
          reason: 'revoked by the user in the console',
          actor: principal.email,
        });
        trail.reason = `${id} may no longer act for ${principal.email}`;
        return { app_id: id, revoked: true };
      }),
    );

    // The key the browser checks checkpoints with: an auditor compares it with the one they pinned
    // (`gatehouse audit public-key`), since a server that lies about its log would lie about this too.
    const keyShape = {
      tags: ['audit'],
      response: { 200: Type.String({ description: 'the checkpoint verifier key (C2SP note verifier)' }) },
    };
    scope.get('/audit/v1/public-key', { schema: keyShape }, async (request, reply) => {
      const key = await governed(deps, request, reply, 'audit.public_key', async (trail) => {
        await callerWithScope(deps, request, trail, 'audit_key', 'audit:read');
        trail.reason = 'verifier key returned';
        return deps.audit.verifierKey();
      });
      return reply.type('text/plain; charset=utf-8').send(key);
    });

    const vocabularyShape = {
      tags: ['console'],
      response: {
        200: Open({ scopes: Type.Unknown(), data_classes: strings, consent_purposes: strings }),
      },
    };
    scope.get('/admin/v1/admission', { schema: vocabularyShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.vocabulary', async (trail) => {
        await signedIn(request, trail, 'app');
        trail.reason = 'plan vocabulary returned';
        return {
          scopes: deps.fieldsets,
          data_classes: dataClasses,
          consent_purposes: deps.consentPurposes,
        };
      }),
    );

    // Any JSON: the dry run reports what is wrong with a plan being typed, as admission would.
    const dryRunShape = {
      tags: ['console'],
      body: Type.Unknown({ description: 'a manifest (the plan being typed)' }),
      response: { 200: admission },
    };
    scope.post('/admin/v1/admission', { schema: dryRunShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.apps.admission', async (trail) => {
        await signedIn(request, trail, 'app');
        rejectInvalid(request);
        const result = await deps.judge(request.body);
        trail.reason = `dry run: ${result.decision}`;
        return {
          decision: result.decision,
          rules: result.rules.map(({ id, effect, reason }) => ({ id, effect, reason })),
          errors: result.errors ?? [],
          risk_score: result.enrichment?.risk_score ?? null,
          data_classes: result.enrichment?.data_classes ?? [],
          policy_version: result.version,
        };
      }),
    );
  });
}

/** Who the caller is and which console views their duties open. */
function whoami(principal: Principal) {
  return {
    sub: principal.userId,
    email: principal.email,
    role: principal.role,
    scopes: principal.scopes,
    duties: principal.scopes.flatMap((scope) =>
      Object.hasOwn(duties, scope) ? [duties[scope as keyof typeof duties]] : [],
    ),
  };
}

/** The fields each scope opens, by object: what the user sees the app can read or write. */
function fieldsOf(
  scopes: readonly string[],
  fieldsets: ConsoleRouteDeps['fieldsets'],
): Record<string, { object: string; fields: readonly string[] }> {
  return Object.fromEntries(
    scopes.flatMap((scope) =>
      Object.hasOwn(fieldsets, scope)
        ? [[scope, { object: fieldsets[scope]!.object, fields: fieldsets[scope]!.fields }]]
        : [],
    ),
  );
}
