import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { DependencyUnavailable } from '../errors/index.js';

/** Asymmetric algorithms a DPoP proof may use (RFC 9449 §5.1); never `none` or HMAC. */
export const dpopAlgorithms = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'];
const maxProofLength = 4096;
const maxJtiLength = 128;

export interface DpopCheck {
  /** The compact JWS from the `DPoP` header. */
  proof: string;
  /** The request's method and absolute URL (query and fragment are ignored, RFC 9449 §4.3). */
  method: string;
  url: string;
  /** When a token is presented with the proof: it must be hashed into `ath`. */
  accessToken?: string;
  /** When the token is bound: the proof's key must have this thumbprint. */
  jkt?: string;
}

export type DpopFailure = 'malformed' | 'signature' | 'htm' | 'htu' | 'iat' | 'replay' | 'ath' | 'jkt';

/** Why a proof failed, for `cause` and logs (never sent). */
export class DpopProofError extends Error {
  readonly code = 'DPOP_PROOF_REFUSED';
  constructor(readonly reason: DpopFailure) {
    super(`DPoP proof refused: ${reason}`);
  }
}

/**
 * Where the jtis of accepted proofs are remembered. Per node by default; at scale, shared by every
 * node (Redis SET NX), so that a proof replayed to another node is refused too.
 */
export interface ReplayStore {
  /**
   * Remembers `key` until `untilSeconds` and answers true, or answers false when it is remembered
   * already (a replay). Throws when it cannot tell: the proof is then refused (503), never let through.
   */
  remember(key: string, untilSeconds: number, nowSeconds: number): Promise<boolean>;
}

/** The replay store of one node: bounded, gone on restart. */
export class MemoryReplayStore implements ReplayStore {
  /** key → second after which it may be forgotten. */
  readonly #seen = new Map<string, number>();
  readonly #maxSeen: number;

  constructor(maxSeen = 100_000) {
    this.#maxSeen = maxSeen;
  }

  remember(key: string, untilSeconds: number, nowSeconds: number): Promise<boolean> {
    this.#forgetOld(nowSeconds);
    if (this.#seen.has(key)) return Promise.resolve(false);
    this.#seen.set(key, untilSeconds);
    return Promise.resolve(true);
  }

  #forgetOld(nowSeconds: number): void {
    if (this.#seen.size < this.#maxSeen && this.#seen.size % 256 !== 0) return;
    for (const [key, until] of this.#seen) if (until < nowSeconds) this.#seen.delete(key);
    // Still full of live entries: a flood. Refusing would lock out every client; forget the oldest.
    while (this.#seen.size >= this.#maxSeen) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
    }
  }
}

/**
 * Checks DPoP proofs (RFC 9449 §4.3): typ dpop+jwt, an asymmetric alg, a public `jwk` in the header and
 * a signature by it, htm, htu, iat within the window, a jti not seen within the window (in `replay`),
 * ath = SHA-256 of the access token, and the key's thumbprint. Answers the thumbprint.
 */
export class DpopVerifier {
  readonly #windowSeconds: number;
  readonly #now: () => Date;
  readonly #replay: ReplayStore;

  constructor(options: { windowSeconds: number; now: () => Date; replay?: ReplayStore }) {
    this.#windowSeconds = options.windowSeconds;
    this.#now = options.now;
    this.#replay = options.replay ?? new MemoryReplayStore();
  }

  async verify(check: DpopCheck): Promise<string> {
    const { proof } = check;
    if (typeof proof !== 'string' || proof.length > maxProofLength || proof.split('.').length !== 3) {
      throw new DpopProofError('malformed');
    }
    let jwk: JWK | undefined;
    try {
      jwk = decodeProtectedHeader(proof).jwk;
    } catch {
      throw new DpopProofError('malformed');
    }
    // A private key in the header is a broken client; refuse rather than use it.
    if (!jwk || typeof jwk !== 'object' || 'd' in jwk || jwk.kty === 'oct')
      throw new DpopProofError('malformed');
    const nowSeconds = Math.floor(this.#now().getTime() / 1000);
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: dpopAlgorithms,
        currentDate: this.#now(),
      }));
    } catch {
      throw new DpopProofError('signature');
    }
    const { htm, htu, iat, jti, ath } = payload;
    if (htm !== check.method.toUpperCase()) throw new DpopProofError('htm');
    if (typeof htu !== 'string' || normalizeUrl(htu) !== normalizeUrl(check.url))
      throw new DpopProofError('htu');
    if (
      typeof iat !== 'number' ||
      !Number.isFinite(iat) ||
      Math.abs(nowSeconds - iat) > this.#windowSeconds
    ) {
      throw new DpopProofError('iat');
    }
    if (typeof jti !== 'string' || jti === '' || jti.length > maxJtiLength)
      throw new DpopProofError('malformed');
    if (check.accessToken !== undefined) {
      const expected = createHash('sha256').update(check.accessToken).digest('base64url');
      if (ath !== expected) throw new DpopProofError('ath');
    }
    const thumbprint = await calculateJwkThumbprint(jwk);
    if (check.jkt !== undefined && thumbprint !== check.jkt) throw new DpopProofError('jkt');
    // Replay: remembered for as long as the proof could still be accepted, and checked last so a proof
    // refused for another reason does not burn its jti.
    let first: boolean;
    try {
      first = await this.#replay.remember(
        `${thumbprint}:${jti}`,
        Math.ceil(iat) + this.#windowSeconds + 1,
        nowSeconds,
      );
    } catch (cause) {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        'DPoP proofs cannot be checked for replay right now, so the request was refused; retry shortly',
        { cause },
      );
    }
    if (!first) throw new DpopProofError('replay');
    return thumbprint;
  }
}

/** Scheme, host and path only; the URL parser lower-cases scheme and host and drops default ports. */
function normalizeUrl(value: string): string {
  if (!URL.canParse(value)) return '';
  const url = new URL(value);
  return `${url.protocol}//${url.host}${url.pathname}`;
}
