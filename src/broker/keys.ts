import { randomBytes } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import { ConfigError, NotFound } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import { bumpControlRevision, type Db } from '../store/index.js';
import { brokerDb, type BrokerDb } from './tables.js';

/** The first key's secret name (kept from before rotation existed). */
export const signingKeyName = 'broker/signing-key';
export const accessTokenAlg = 'EdDSA';
/** Longest life of any token the broker signs (elevated tokens included), plus skew. */
export const maxTokenLifetimeSeconds = 3600 + 60;

export interface BrokerKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public JWK as the JWKS publishes it. */
  readonly publicJwk: Readonly<JWK>;
}

interface RingEntry {
  readonly key: BrokerKey;
  readonly publishAt: number;
  readonly signAt: number;
  readonly retireAt: number | null;
  readonly createdAt: number;
}

/**
 * The broker's Ed25519 signing keys (kid = RFC 7638 thumbprint). Private keys live encrypted in the
 * secret store; their schedule lives in `broker_keys`, so every node on the same store and database
 * publishes and signs alike. A new key is published `publishLeadSeconds` before it signs; the key it
 * replaces stays published and accepted until every token it signed has expired.
 */
export interface KeyRing {
  /** The key that signs now: the newest whose signing time has come. */
  signingKey(nowSeconds: number): BrokerKey;
  /** A key a token may name: published and not retired. `kid` is only a lookup key. */
  verificationKey(kid: unknown, nowSeconds: number): CryptoKey | undefined;
  jwks(nowSeconds: number): { keys: Readonly<JWK>[] };
  /** Reads the schedule again (other nodes may have rotated). */
  reload(): Promise<void>;
  /** Creates a key: published now, signing after the lead time; the current one retires after it. */
  rotate(nowSeconds: number): Promise<BrokerKey>;
  /** Rotates when the current key is older than the schedule allows and no rotation is pending. */
  rotateIfDue(nowSeconds: number): Promise<boolean>;
  /**
   * Takes a key out at once: it neither signs nor verifies nor shows in JWKS. When it was the signing
   * key, a new one signs from now on (no publish lead: the old one must not sign a moment longer).
   * Answers the kid that signs now. NOT_FOUND for a kid the ring never had.
   */
  revoke(kid: string, nowSeconds: number): Promise<string>;
  /** Every key of the schedule, for the admin API. */
  list(nowSeconds: number): KeyState[];
}

export interface KeyState {
  readonly kid: string;
  readonly state: 'signing' | 'published' | 'retiring' | 'retired';
  readonly created_at: string;
  readonly sign_at: string;
  readonly retire_at: string | null;
}

export async function openKeyRing(options: {
  db: BrokerDb;
  secrets: SecretStore;
  publishLeadSeconds: number;
  rotationDays: number;
}): Promise<KeyRing> {
  const { db, secrets, publishLeadSeconds, rotationDays } = options;
  let entries: RingEntry[] = [];
  const loaded = new Map<string, BrokerKey>();

  async function load(secretName: string): Promise<BrokerKey> {
    const cached = loaded.get(secretName);
    if (cached) return cached;
    const bytes = await secrets.get(secretName);
    if (!bytes) throw new ConfigError(`secrets: ${secretName} is missing`);
    const key = await importKey(bytes, secretName);
    loaded.set(secretName, key);
    return key;
  }

  async function reload(): Promise<void> {
    let rows = await db.selectFrom('broker_keys').selectAll().orderBy('sign_at').execute();
    if (rows.length === 0) {
      // First start: the key of the secret store's first generation. It signs from the beginning of time
      // (tests and tools mint with clocks set in the past); its age counts from now.
      const bytes =
        (await secrets.get(signingKeyName)) ??
        (await secrets.putIfAbsent(signingKeyName, await newKeyBytes()));
      const key = await importKey(bytes, signingKeyName);
      await db
        .insertInto('broker_keys')
        .values({
          kid: key.kid,
          secret_name: signingKeyName,
          created_at: Math.floor(Date.now() / 1000),
          publish_at: 0,
          sign_at: 0,
          retire_at: null,
        })
        .onConflict((c) => c.column('kid').doNothing())
        .execute();
      rows = await db.selectFrom('broker_keys').selectAll().orderBy('sign_at').execute();
    }
    const next: RingEntry[] = [];
    for (const row of rows) {
      const key = await load(row.secret_name);
      if (key.kid !== row.kid) {
        throw new ConfigError(`secrets: ${row.secret_name} does not hold key ${row.kid}`);
      }
      next.push({
        key,
        publishAt: Number(row.publish_at),
        signAt: Number(row.sign_at),
        retireAt: row.retire_at === null ? null : Number(row.retire_at),
        createdAt: Number(row.created_at),
      });
    }
    entries = next;
  }

  const live = (entry: RingEntry, now: number) =>
    entry.publishAt <= now && (entry.retireAt === null || entry.retireAt > now);

  const signerOf = (ring: readonly RingEntry[], now: number) =>
    ring.filter((entry) => entry.signAt <= now && live(entry, now)).at(-1);
  const signer = (now: number) => signerOf(entries, now);

  function current(now: number): RingEntry {
    const newest = signer(now);
    if (!newest) throw new ConfigError('broker: no signing key is active');
    return newest;
  }

  /** A new key's material, stored under its own secret name before any row names it. */
  async function newRingKey(): Promise<{ key: BrokerKey; secretName: string }> {
    const secretName = `broker/signing-key.${randomBytes(8).toString('hex')}`;
    return {
      key: await importKey(await secrets.putIfAbsent(secretName, await newKeyBytes()), secretName),
      secretName,
    };
  }

  /** Adds `fresh` to sign from `signAt`; the keys signing until then stay until their last token expires. */
  async function addKey(
    trx: BrokerDb,
    fresh: { key: BrokerKey; secretName: string },
    now: number,
    signAt: number,
  ): Promise<void> {
    await trx
      .insertInto('broker_keys')
      .values({
        kid: fresh.key.kid,
        secret_name: fresh.secretName,
        created_at: now,
        publish_at: now,
        sign_at: signAt,
        retire_at: null,
      })
      .execute();
    await trx
      .updateTable('broker_keys')
      .set({ retire_at: signAt + maxTokenLifetimeSeconds })
      .where('kid', '!=', fresh.key.kid)
      .where('retire_at', 'is', null)
      .execute();
  }

  async function rotate(now: number, lead = publishLeadSeconds): Promise<BrokerKey> {
    const fresh = await newRingKey();
    await db.transaction().execute(async (trx) => {
      await addKey(trx, fresh, now, now + lead);
      await bumpControlRevision(trx);
    });
    await reload();
    return fresh.key;
  }

  await reload();
  return {
    signingKey: (now) => current(now).key,
    verificationKey(kid, now) {
      if (typeof kid !== 'string') return undefined;
      return entries.find((entry) => entry.key.kid === kid && live(entry, now))?.key.publicKey;
    },
    jwks: (now) => ({
      keys: entries.filter((entry) => live(entry, now)).map((entry) => entry.key.publicJwk),
    }),
    reload,
    rotate: (now) => rotate(now),
    async revoke(kid, now) {
      await reload();
      if (!entries.some((entry) => entry.key.kid === kid)) {
        throw new NotFound('no signing key has this kid');
      }
      // The key that would sign next is an older one left to retire (or none): a fresh key is safer. It
      // goes in with the revocation, in one transaction, so no node ever reads a ring without a signer.
      const next = signerOf(
        entries.filter((entry) => entry.key.kid !== kid),
        now,
      );
      const fresh = next?.retireAt === null ? undefined : await newRingKey();
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('broker_keys').set({ retire_at: now }).where('kid', '=', kid).execute();
        if (fresh) await addKey(trx, fresh, now, now);
        await bumpControlRevision(trx);
      });
      await reload();
      return fresh ? fresh.key.kid : current(now).key.kid;
    },
    list: (now) =>
      entries.map((entry) => ({
        kid: entry.key.kid,
        state:
          entry.retireAt !== null && entry.retireAt <= now
            ? 'retired'
            : entry === signer(now)
              ? 'signing'
              : entry.retireAt !== null
                ? 'retiring'
                : 'published',
        created_at: iso(entry.createdAt),
        sign_at: iso(entry.signAt),
        retire_at: entry.retireAt === null ? null : iso(entry.retireAt),
      })),
    async rotateIfDue(now) {
      if (rotationDays === 0) return false;
      const newest = entries.at(-1);
      if (!newest || newest.signAt > now || now - newest.createdAt < rotationDays * 86_400) return false;
      await rotate(now);
      return true;
    },
  };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

async function newKeyBytes(): Promise<Uint8Array> {
  const { privateKey, publicKey } = await generateKeyPair(accessTokenAlg, {
    crv: 'Ed25519',
    extractable: true,
  });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return Buffer.from(
    JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: accessTokenAlg, use: 'sig' }),
  );
}

async function importKey(bytes: Uint8Array, name: string): Promise<BrokerKey> {
  const jwk = parseKey(bytes, name);
  const publicJwk = Object.freeze({
    kty: jwk.kty,
    crv: jwk.crv,
    x: jwk.x,
    kid: jwk.kid,
    alg: accessTokenAlg,
    use: 'sig',
  });
  const [privateKey, publicKey] = await Promise.all([
    importJWK(jwk, accessTokenAlg) as Promise<CryptoKey>,
    importJWK(publicJwk, accessTokenAlg) as Promise<CryptoKey>,
  ]);
  return { kid: jwk.kid as string, privateKey, publicKey, publicJwk };
}

function parseKey(bytes: Uint8Array, name: string): JWK {
  let jwk: JWK | undefined;
  try {
    jwk = JSON.parse(Buffer.from(bytes).toString('utf8')) as JWK;
  } catch {
    jwk = undefined;
  }
  const valid =
    jwk?.kty === 'OKP' &&
    jwk.crv === 'Ed25519' &&
    [jwk.d, jwk.x, jwk.kid].every((part) => typeof part === 'string' && part.length > 0);
  if (!valid || !jwk) {
    throw new ConfigError(`secrets: ${name} is not an Ed25519 private key`);
  }
  return jwk;
}

/**
 * Rotates the broker's signing key on demand, without a running server (the CLI): the new key is
 * published at once and signs after `broker.keyPublishLeadSeconds`; running nodes pick it up within
 * 30 s, and sooner when they meet a token with its kid. Answers the new kid.
 */
export async function rotateSigningKey(options: {
  db: Db | BrokerDb;
  secrets: SecretStore;
  publishLeadSeconds: number;
  now?: Date;
}): Promise<string> {
  const ring = await openKeyRing({ ...options, db: brokerDb(options.db), rotationDays: 0 });
  return (await ring.rotate(Math.floor((options.now ?? new Date()).getTime() / 1000))).kid;
}
