/** What the token endpoint answered, as far as the SDK keeps it. */
export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  /** Epoch milliseconds after which the access token is no longer used. */
  expiresAt: number;
}

/** Where the CRM client gets its access token, and a new one when the gateway says it is stale. */
export interface TokenSource {
  accessToken(): Promise<string>;
  /** A token newer than `stale`; called after a 401 `invalid_token` for `stale`. */
  renew(stale: string): Promise<string>;
}

/** A refresh token grant: the rotated token set, or a thrown error when the grant is refused. */
export type RefreshGrant = (refreshToken: string) => Promise<TokenSet>;

/**
 * Tokens that refresh themselves. Gatehouse rotates refresh tokens and treats a reused one as theft
 * (the whole sign-in is revoked), so there is never more than one refresh in flight: every caller that
 * needs a new token waits for the same one, and a token is only refreshed once.
 */
export class RotatingTokens implements TokenSource {
  #tokens: TokenSet;
  #refreshing: Promise<TokenSet> | undefined;
  readonly #grant: RefreshGrant;
  readonly #now: () => number;
  readonly #skewMs: number;

  constructor(initial: TokenSet, grant: RefreshGrant, options: { now?: () => number; skewMs?: number } = {}) {
    this.#tokens = initial;
    this.#grant = grant;
    this.#now = options.now ?? (() => Date.now());
    this.#skewMs = options.skewMs ?? 10_000;
  }

  get current(): Readonly<TokenSet> {
    return this.#tokens;
  }

  async accessToken(): Promise<string> {
    if (this.#refreshing) return (await this.#refreshing).accessToken;
    if (this.#now() < this.#tokens.expiresAt - this.#skewMs) return this.#tokens.accessToken;
    return this.renew(this.#tokens.accessToken);
  }

  async renew(stale: string): Promise<string> {
    // Renewed already (another call saw the same 401): use the new token, never refresh twice.
    if (this.#refreshing) return (await this.#refreshing).accessToken;
    if (stale !== this.#tokens.accessToken) return this.#tokens.accessToken;
    const refreshToken = this.#tokens.refreshToken;
    if (refreshToken === undefined) throw new TypeError('no refresh token: sign in again');
    this.#refreshing = this.#grant(refreshToken).then(
      (next) => {
        this.#tokens = { ...next, refreshToken: next.refreshToken ?? refreshToken };
        this.#refreshing = undefined;
        return this.#tokens;
      },
      (error: unknown) => {
        this.#refreshing = undefined;
        throw error;
      },
    );
    return (await this.#refreshing).accessToken;
  }
}
