import { ElevationError, InputError, OAuthError } from '../errors/index.js';
import type { AccessTokenClaims } from './access-token.js';
import {
  audit,
  issueAccessToken,
  nowSeconds,
  randomToken,
  requireScope,
  roleDuties,
  roleScopes,
  type BrokerContext,
} from './context.js';
import { parseScope, platformScopes } from './scopes.js';
import type { BrokerTables } from './tables.js';

/** An elevation request as the API shows it. */
export interface Elevation {
  id: string;
  status: 'pending' | 'approved' | 'refused' | 'issued' | 'expired';
  requester: string;
  app_id: string;
  client_id: string;
  scope: string;
  justification: string;
  reviewer: string | null;
  created_at: string;
  decided_at: string | null;
  /** Pending: when the request lapses; approved or issued: when the elevation ends. */
  expires_at: string;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const who = (claims: AccessTokenClaims) => claims.email ?? claims.sub;

type Row = BrokerTables['broker_elevations'];

function view(row: Row, now: number): Elevation {
  const identity = JSON.parse(row.identity) as { email?: string; sub: string };
  const lapsed = (row.status === 'pending' || row.status === 'approved') && Number(row.expires_at) <= now;
  return {
    id: row.id,
    status: lapsed ? 'expired' : row.status,
    requester: identity.email ?? identity.sub,
    app_id: row.app_id,
    client_id: row.client_id,
    scope: row.scope,
    justification: row.justification,
    reviewer: row.reviewer,
    created_at: iso(Number(row.created_at)),
    decided_at: row.decided_at === null ? null : iso(Number(row.decided_at)),
    expires_at: iso(Number(row.expires_at)),
  };
}

/**
 * Why a role may not be elevated to these scopes, or undefined: platform scopes never are, and CRM
 * scopes only when the role's `elevate` list names them (its own scopes need no elevation).
 */
export function elevationRefusal(
  scopes: readonly string[],
  roleAllows: readonly string[],
  elevatable: readonly string[],
): { code: string; message: string } | undefined {
  const platform = scopes.filter((scope) => platformScopes.includes(scope) || !/^(read|write):/.test(scope));
  if (platform.length > 0) {
    return {
      code: 'ELEVATION_PLATFORM_SCOPE',
      message: `${platform.join(' ')} cannot be had by elevation: platform duties come only from the console sign-in of a user whose role holds them`,
    };
  }
  const beyond = scopes.filter((scope) => !roleAllows.includes(scope) && !elevatable.includes(scope));
  if (beyond.length > 0) {
    return {
      code: 'ELEVATION_BEYOND_ROLE',
      message: `your role cannot be elevated to ${beyond.join(' ')}`,
    };
  }
  return undefined;
}

/**
 * Just-in-time elevation. A user asks, with their own access token, for scopes of the same app that
 * their role does not give them but may be elevated to (`roles.*.elevate`), saying why; a reviewer
 * (scope `review`) who is not the requester and holds the review duty for those scopes
 * (`roles.*.reviews`) approves or refuses; the requester then gets one elevated token that lives
 * until the approval ends (`broker.elevationTtlSeconds` after it, 15 minutes by default). Every step is audited, and a step
 * that cannot be audited does not happen.
 */
export function createElevations(ctx: BrokerContext) {
  const find = async (id: string): Promise<Row> => {
    const row = await ctx.db
      .selectFrom('broker_elevations')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new ElevationError('ELEVATION_NOT_FOUND', 'no elevation request with this id');
    return row as Row;
  };

  return {
    async request(
      claims: AccessTokenClaims,
      body: { scope?: unknown; justification?: unknown },
      requestId?: string,
    ): Promise<Elevation> {
      if (typeof body.scope !== 'string') throw new InputError('scope is required', { field: 'scope' });
      const justification = typeof body.justification === 'string' ? body.justification.trim() : '';
      if (justification.length < 10 || justification.length > 1000) {
        throw new InputError('say why, in 10 to 1000 characters', { field: 'justification' });
      }
      const scopes = parseScope(body.scope);
      const client = await ctx.lookupClient(claims.client_id);
      if (!client || client.status !== 'approved') {
        throw new OAuthError('OAUTH_INVALID_CLIENT', 'unknown client, or the app is not approved');
      }
      const unapproved = scopes.filter((scope) => !client.scopes.includes(scope));
      if (unapproved.length > 0) {
        throw new OAuthError('OAUTH_INVALID_SCOPE', `not approved for this app: ${unapproved.join(' ')}`);
      }
      const allowed = roleScopes(ctx, claims.role);
      if (scopes.every((scope) => allowed.includes(scope))) {
        throw new OAuthError(
          'OAUTH_INVALID_SCOPE',
          'your role already allows these scopes: ask for them at /oauth/token',
        );
      }
      const id = `elv_${randomToken(12)}`;
      const refusal = elevationRefusal(scopes, allowed, roleDuties(ctx, claims.role).elevate);
      if (refusal) {
        await audit(
          ctx,
          {
            actor: who(claims),
            role: claims.role,
            appId: claims.app_id,
            action: 'elevation.request',
            resourceType: 'elevation',
            resourceId: id,
            scope: scopes.join(' '),
            requestId,
            outcome: 'deny',
            reason: refusal.code,
          },
          true,
        );
        throw new OAuthError('OAUTH_INVALID_SCOPE', refusal.message);
      }
      const now = nowSeconds(ctx);
      await audit(
        ctx,
        {
          actor: who(claims),
          role: claims.role,
          appId: claims.app_id,
          action: 'elevation.request',
          resourceType: 'elevation',
          resourceId: id,
          scope: scopes.join(' '),
          requestId,
          outcome: 'allow',
          reason: 'requested',
        },
        true,
      );
      await ctx.db
        .insertInto('broker_elevations')
        .values({
          id,
          sub: claims.sub,
          identity: JSON.stringify({
            sub: claims.sub,
            role: claims.role,
            email: claims.email,
            territory: claims.territory,
          }),
          client_id: claims.client_id,
          app_id: claims.app_id,
          scope: scopes.join(' '),
          justification,
          status: 'pending',
          reviewer: null,
          created_at: now,
          decided_at: null,
          expires_at: now + ctx.config.broker.elevationRequestTtlSeconds,
          token_jti: null,
        })
        .execute();
      return view((await find(id)) as Row, now);
    },

    async show(claims: AccessTokenClaims, id: string): Promise<Elevation> {
      const row = await find(id);
      // Only the requester and reviewers see a request; to anyone else it does not exist.
      if (row.sub !== claims.sub && !claims.scope.split(' ').includes('review')) {
        throw new ElevationError('ELEVATION_NOT_FOUND', 'no elevation request with this id');
      }
      return view(row, nowSeconds(ctx));
    },

    async list(claims: AccessTokenClaims, status?: string): Promise<{ records: Elevation[] }> {
      requireScope(claims, 'review');
      let query = ctx.db.selectFrom('broker_elevations').selectAll().orderBy('created_at', 'desc').limit(200);
      if (status !== undefined) {
        if (!['pending', 'approved', 'refused', 'issued'].includes(status)) {
          throw new InputError('status must be pending, approved, refused or issued', { field: 'status' });
        }
        query = query.where('status', '=', status as Row['status']);
      }
      const now = nowSeconds(ctx);
      return { records: (await query.execute()).map((row) => view(row as Row, now)) };
    },

    async decide(
      claims: AccessTokenClaims,
      id: string,
      decision: 'approve' | 'refuse',
      requestId?: string,
    ): Promise<Elevation> {
      requireScope(claims, 'review');
      const row = await find(id);
      const requester = JSON.parse(row.identity) as { email?: string; sub: string };
      const event = {
        actor: who(claims),
        role: claims.role,
        appId: row.app_id,
        resourceType: 'elevation',
        resourceId: id,
        scope: row.scope,
        requestId,
      };
      if (row.sub === claims.sub || (requester.email !== undefined && requester.email === claims.email)) {
        await audit(
          ctx,
          { ...event, action: `elevation.${decision}`, outcome: 'deny', reason: 'ELEVATION_SELF_REVIEW' },
          true,
        );
        throw new ElevationError('ELEVATION_SELF_REVIEW', 'you cannot review your own elevation request');
      }
      const reviews = roleDuties(ctx, claims.role).reviews;
      const outsideDuty = row.scope.split(' ').filter((scope) => !reviews.includes(scope));
      if (outsideDuty.length > 0) {
        await audit(
          ctx,
          { ...event, action: `elevation.${decision}`, outcome: 'deny', reason: 'ELEVATION_NOT_REVIEWER' },
          true,
        );
        throw new ElevationError(
          'ELEVATION_NOT_REVIEWER',
          `your role does not hold the review duty for ${outsideDuty.join(' ')}: ask a reviewer who does`,
        );
      }
      const now = nowSeconds(ctx);
      if (row.status !== 'pending' || Number(row.expires_at) <= now) {
        throw new ElevationError('ELEVATION_CONFLICT', 'this request is no longer pending');
      }
      await audit(
        ctx,
        {
          ...event,
          action: `elevation.${decision}`,
          outcome: 'allow',
          reason: decision === 'approve' ? 'approved' : 'refused',
        },
        true,
      );
      const result = await ctx.db
        .updateTable('broker_elevations')
        .set({
          status: decision === 'approve' ? 'approved' : 'refused',
          reviewer: who(claims),
          decided_at: now,
          expires_at:
            decision === 'approve' ? now + ctx.config.broker.elevationTtlSeconds : Number(row.expires_at),
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) {
        throw new ElevationError('ELEVATION_CONFLICT', 'this request is no longer pending');
      }
      return view(await find(id), now);
    },

    /**
     * The elevated token, once: the presenting token's scopes plus the approved ones, its binding and
     * capability kept, living until the approval ends (never longer than an access token).
     */
    async issue(
      claims: AccessTokenClaims,
      id: string,
      requestId?: string,
    ): Promise<{ access_token: string; token_type: 'Bearer' | 'DPoP'; expires_in: number; scope: string }> {
      const row = await find(id);
      if (row.sub !== claims.sub)
        throw new ElevationError('ELEVATION_NOT_FOUND', 'no elevation request with this id');
      const now = nowSeconds(ctx);
      if (row.status !== 'approved' || Number(row.expires_at) <= now || row.client_id !== claims.client_id) {
        throw new ElevationError(
          'ELEVATION_CONFLICT',
          'this elevation is not approved, already used, or over',
        );
      }
      const scope = [...new Set([...claims.scope.split(' '), ...row.scope.split(' ')])].join(' ');
      const ttl = Math.min(Number(row.expires_at) - now, ctx.config.broker.elevationTtlSeconds);
      const {
        token,
        claims: issued,
        expiresIn,
      } = await issueAccessToken(
        ctx,
        {
          sub: claims.sub,
          role: claims.role,
          email: claims.email,
          territory: claims.territory,
          client_id: claims.client_id,
          app_id: claims.app_id,
          scope,
          elev: id,
          ...(claims.sid === undefined ? {} : { sid: claims.sid }),
          ...(claims.cnf === undefined ? {} : { cnf: claims.cnf }),
          ...(claims.cap === undefined ? {} : { cap: claims.cap }),
        },
        ttl,
      );
      const result = await ctx.db
        .updateTable('broker_elevations')
        .set({ status: 'issued', token_jti: issued.jti })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) {
        throw new ElevationError(
          'ELEVATION_CONFLICT',
          'this elevation is not approved, already used, or over',
        );
      }
      await audit(
        ctx,
        {
          actor: who(claims),
          role: claims.role,
          appId: claims.app_id,
          action: 'elevation.token_issued',
          resourceType: 'elevation',
          resourceId: id,
          scope: row.scope,
          requestId,
          outcome: 'allow',
          reason: `jti ${issued.jti}`,
        },
        true,
      );
      return {
        access_token: token,
        token_type: claims.cnf === undefined ? 'Bearer' : 'DPoP',
        expires_in: expiresIn,
        scope,
      };
    },
  };
}

export type Elevations = ReturnType<typeof createElevations>;
