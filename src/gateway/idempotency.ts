import { hash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { IdempotencyError, InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import type { Trail } from './pipeline.js';

/**
 * `Idempotency-Key` on gateway writes (IETF draft-ietf-httpapi-idempotency-key-header): a client that
 * retries a POST, PATCH or DELETE with the same key gets the first answer again instead of a second
 * change. The key is claimed durably before the write and the answer saved after it, so a retry after a
 * crash, a timeout or a 503 never writes twice: it replays, or (if the first attempt stopped midway)
 * answers 409 and the client reads the record before trying again with a new key.
 */

/** The gateway's table (migration 011_write_idempotency). */
interface IdempotencyTables {
  gateway_idempotency: {
    app_id: string;
    actor_id: string;
    /** SHA-256 of the client's key: the key itself may be anything the client chose. */
    key_hash: string;
    /** SHA-256 of method, path, If-Match and body: the same key with another request is refused. */
    fingerprint: string;
    /** The request that claimed the key (its audit events carry it). */
    request_id: string;
    /** JSON of the answer to replay; null while the first write has not finished. */
    answer: string | null;
    /** Epoch milliseconds. */
    created_at: number;
  };
}

/** What a write answered, as replayed to a retry. */
export interface SavedAnswer {
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string>>;
  /** The request whose write this answer reports. */
  readonly requestId: string;
}

export type Claim =
  | { readonly replay: SavedAnswer }
  | {
      readonly replay?: undefined;
      /** Saves the answer once the write is done. */
      settle(answer: Omit<SavedAnswer, 'requestId'>): Promise<void>;
      /** Frees the key when the write was refused before anything changed, so it can be retried. */
      release(): Promise<void>;
    };

export interface WriteKeys {
  claim(request: FastifyRequest, owner: { appId: string; actorId: string }, body: unknown): Promise<Claim>;
}

const keyPattern = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key, undefined without one, 422 when it is malformed or repeated. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  // The draft's form is a structured-field string ("…"); a bare token is accepted as well.
  const key = typeof header === 'string' ? header.trim().replace(/^"(.*)"$/, '$1') : undefined;
  if (key === undefined || !keyPattern.test(key)) {
    throw new InputError('Idempotency-Key must be one value of 1–255 visible ASCII characters', {
      parameter: 'Idempotency-Key',
    });
  }
  return key;
}

/** What makes two requests the same request: method, path, If-Match and body. */
export function requestFingerprint(request: FastifyRequest, body: unknown): string {
  const ifMatch = request.headers['if-match'];
  const parts = [request.method, request.url, String(ifMatch ?? ''), JSON.stringify(body ?? null)];
  return hash('sha256', parts.join('\n'), 'hex');
}

/**
 * Keys in the store. A key lives `ttlMs` (24 hours by default): a retry comes within minutes, and a
 * key kept forever would keep the answer (which may hold record values) forever.
 */
export function storedWriteKeys(store: Db, ttlMs = 86_400_000, now: () => number = Date.now): WriteKeys {
  const db = store as unknown as Kysely<IdempotencyTables>;
  let claims = 0;
  return {
    async claim(request, owner, body) {
      const key = idempotencyKeyOf(request);
      if (key === undefined) return { settle: async () => {}, release: async () => {} };
      const at = now();
      // Expired keys go in batches, so claiming stays one insert most of the time.
      if (claims++ % 100 === 0) {
        await db
          .deleteFrom('gateway_idempotency')
          .where('created_at', '<', at - ttlMs)
          .execute();
      }
      const row = {
        app_id: owner.appId,
        actor_id: owner.actorId,
        key_hash: hash('sha256', key, 'hex'),
        fingerprint: requestFingerprint(request, body),
        request_id: request.id,
        answer: null,
        created_at: at,
      };
      const inserted = await db
        .insertInto('gateway_idempotency')
        .values(row)
        .onConflict((c) => c.doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) {
        const held = await db
          .selectFrom('gateway_idempotency')
          .selectAll()
          .where('app_id', '=', row.app_id)
          .where('actor_id', '=', row.actor_id)
          .where('key_hash', '=', row.key_hash)
          .executeTakeFirst();
        if (held && Number(held.created_at) >= at - ttlMs) return replayOf(held, row.fingerprint);
        // Expired between the batch delete and now: take it over.
        await db
          .updateTable('gateway_idempotency')
          .set(row)
          .where('app_id', '=', row.app_id)
          .where('actor_id', '=', row.actor_id)
          .where('key_hash', '=', row.key_hash)
          .execute();
      }
      return {
        async settle(answer) {
          await db
            .updateTable('gateway_idempotency')
            .set({ answer: JSON.stringify({ body: answer.body ?? null, headers: answer.headers }) })
            .where('app_id', '=', row.app_id)
            .where('actor_id', '=', row.actor_id)
            .where('key_hash', '=', row.key_hash)
            .where('request_id', '=', row.request_id)
            .execute();
        },
        async release() {
          await db
            .deleteFrom('gateway_idempotency')
            .where('app_id', '=', row.app_id)
            .where('actor_id', '=', row.actor_id)
            .where('key_hash', '=', row.key_hash)
            .where('request_id', '=', row.request_id)
            .execute();
        },
      };
    },
  };
}

function replayOf(
  held: IdempotencyTables['gateway_idempotency'],
  fingerprint: string,
): { replay: SavedAnswer } {
  if (held.fingerprint !== fingerprint) {
    throw new IdempotencyError(
      'IDEMPOTENCY_KEY_REUSED',
      'this Idempotency-Key was sent with another request; use a new key for a new write',
    );
  }
  if (held.answer === null) {
    throw new IdempotencyError(
      'IDEMPOTENCY_KEY_IN_USE',
      'the write first sent with this Idempotency-Key is in progress or did not finish; read the record to see whether it happened, then retry with a new key',
    );
  }
  const saved = JSON.parse(held.answer) as { body: unknown; headers: Record<string, string> };
  return { replay: { body: saved.body, headers: saved.headers, requestId: held.request_id } };
}

/** Answer headers a replay repeats: where the record is and which version the write left. */
const replayedHeaders = ['etag', 'location'] as const;

/**
 * One write under its claim: a retry gets the saved answer (its event says so); a first attempt runs,
 * and its answer is saved once it is done, or the key is freed when the write was refused before
 * anything changed. A failure after the change keeps the key claimed: a retry then answers 409
 * rather than risk writing twice.
 */
export async function writeOnce(
  claim: Claim,
  trail: Pick<Trail, 'headers' | 'reason'>,
  run: (changed: () => void) => Promise<unknown>,
): Promise<unknown> {
  if (claim.replay) {
    Object.assign(trail.headers, claim.replay.headers, { 'idempotent-replayed': 'true' });
    trail.reason = `replayed the answer of request ${claim.replay.requestId}`;
    return claim.replay.body;
  }
  let changed = false;
  let answer: unknown;
  try {
    answer = await run(() => {
      changed = true;
    });
  } catch (error) {
    if (!changed) await claim.release();
    throw error;
  }
  const headers: Record<string, string> = {};
  for (const name of replayedHeaders) {
    const value = trail.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  await claim.settle({ body: answer, headers });
  return answer;
}
