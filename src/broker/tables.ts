import type { Generated, Kysely } from 'kysely';
import type { Db } from '../store/index.js';

/**
 * The broker's tables (migration 004_broker_grants). Times are epoch seconds. Every secret the client
 * holds (login state, authorization code, refresh token) is stored as its SHA-256, never in plain.
 */
export interface BrokerTables {
  /** Browser sign-ins in flight: /oauth/authorize → IdP → /oauth/callback → consent. */
  broker_logins: {
    /** SHA-256 of the `state` sent to the IdP. */
    id: string;
    /** SHA-256 of the cookie that binds the sign-in to the browser that started it. */
    browser_hash: string;
    client_id: string;
    redirect_uri: string;
    scope: string;
    /** The microapp's own `state`, returned to it unchanged. */
    state: string | null;
    code_challenge: string;
    idp_nonce: string;
    idp_verifier: string;
    /** JSON of the signed-in identity, once the IdP answered. */
    identity: string | null;
    granted_scope: string | null;
    /** JSON of the capability asked (RFC 9396 authorization_details), when the sign-in is narrowed. */
    cap: string | null;
    /** SHA-256 of the consent form's anti-forgery token. */
    consent_hash: string | null;
    done: number;
    expires_at: number;
  };
  broker_codes: {
    code_hash: string;
    client_id: string;
    redirect_uri: string;
    code_challenge: string;
    scope: string;
    identity: string;
    /** The refresh-token family the code starts; revoked when the code is replayed. */
    family_id: string;
    /** JSON of the capability the user consented to, when the sign-in is narrowed. */
    cap: string | null;
    expires_at: number;
    used_at: number | null;
  };
  broker_refresh_tokens: {
    token_hash: string;
    family_id: string;
    client_id: string;
    app_id: string;
    sub: string;
    email: string | null;
    identity: string;
    scope: string;
    /** JSON of the capability claim, when the grant was narrowed. */
    cap: string | null;
    /** DPoP key thumbprint the refresh token is bound to (public clients, RFC 9449 §5). */
    jkt: string | null;
    created_at: number;
    /** Idle expiry. */
    expires_at: number;
    /** Absolute expiry of the family. */
    family_expires_at: number;
    used_at: number | null;
    revoked_at: number | null;
  };
  /** Every revocation, read by every node (revocation fan-out through the database). */
  token_revocations: {
    seq: Generated<number>;
    kind: RevocationKind;
    value: string;
    /**
     * For `app`, `user` and `app_user`: the database's time of the revocation; a subject (ID) token
     * issued at or before it is refused. Access tokens are compared by `seq` instead (their `rev`).
     */
    issued_before: number;
    /** After this, no token the entry covers can still be valid: the entry may be pruned. */
    expires_at: number;
    reason: string;
    created_at: number;
    /** The incident whose containment revoked, if one did. */
    incident: string | null;
  };
  broker_elevations: {
    id: string;
    sub: string;
    identity: string;
    client_id: string;
    app_id: string;
    scope: string;
    justification: string;
    status: 'pending' | 'approved' | 'refused' | 'issued';
    reviewer: string | null;
    created_at: number;
    decided_at: number | null;
    /** Pending: when the request lapses. Approved/issued: when the elevation ends. */
    expires_at: number;
    token_jti: string | null;
  };
  /** Every (IdP issuer, sub) that got a grant, with its normalised e-mail then. */
  broker_subjects: {
    issuer: string;
    sub: string;
    email: string | null;
    seen_at: number;
  };
  broker_keys: {
    kid: string;
    secret_name: string;
    /** When the key was made: scheduled rotation counts its age from here. */
    created_at: number;
    publish_at: number;
    sign_at: number;
    retire_at: number | null;
  };
}

/**
 * jti, family (`sid`), app, user (`subject:<JSON [issuer, sub]>`, `email:<normalised email>`, or
 * `sub:<sub>` written before issuers were recorded), one user in one app (JSON [appId, user]), or a
 * signing key (`kid`).
 */
export type RevocationKind = 'jti' | 'family' | 'app' | 'user' | 'app_user' | 'kid';

export type BrokerDb = Kysely<BrokerTables>;

/** The store seen through the broker's tables only. */
export function brokerDb(db: Db | BrokerDb): BrokerDb {
  return db as unknown as BrokerDb;
}
