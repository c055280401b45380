/**
 * Submitting signed checkpoints to witnesses (c2sp.org/tlog-witness) and publishing them with their
 * cosignatures. Each witness gets the consistency proof from the size it last cosigned for this log;
 * what it answers is kept only when it verifies against the witness key the operator configured.
 */
import { WitnessRefused } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { claimedSize } from './checkpoint.js';
import {
  parseCosignerKey,
  validCosignatures,
  withSignatureLines,
  type CosignatureVerifier,
} from './cosignature.js';

export interface WitnessEndpoint {
  readonly name: string;
  /** The witness's submission prefix: `<url>/add-checkpoint` is posted to. */
  readonly url: string;
  /** Its cosignature/v1 verifier key (`gatehouse witness init` prints it). */
  readonly vkey: string;
}

export interface WitnessingOptions {
  readonly witnesses: readonly WitnessEndpoint[];
  /** Cosignatures a checkpoint needs to be published; all witnesses when absent. */
  readonly quorum?: number;
  readonly timeoutMs?: number;
}

type Prove = (from: number, to: number) => Promise<string[]>;

interface Witness {
  readonly endpoint: WitnessEndpoint;
  readonly verifier: CosignatureVerifier;
}

export class Witnessing {
  readonly quorum: number;
  readonly #db: Db;
  readonly #witnesses: readonly Witness[];
  readonly #prove: Prove;
  readonly #onError: (error: unknown) => void;
  readonly #timeoutMs: number;
  /** One submission round at a time: a witness must see sizes in order. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(db: Db, options: WitnessingOptions, prove: Prove, onError: (error: unknown) => void) {
    this.#db = db;
    this.#witnesses = options.witnesses.map((endpoint) => {
      const verifier = parseCosignerKey(endpoint.vkey);
      if (verifier.name !== endpoint.name) {
        throw new TypeError(`witness ${endpoint.name}: its key is named ${verifier.name}`);
      }
      return { endpoint, verifier };
    });
    this.quorum = options.quorum ?? this.#witnesses.length;
    if (this.quorum < 1 || this.quorum > this.#witnesses.length) {
      throw new TypeError('the witness quorum must be between 1 and the number of witnesses');
    }
    this.#prove = prove;
    this.#onError = onError;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Submits a just-signed checkpoint to every witness that has not cosigned its size, keeps the valid
   * cosignatures, and answers the note with all it holds. A witness that fails is reported, never thrown.
   */
  cosign(note: string): Promise<string> {
    const run = this.#chain.then(async () => {
      const size = claimedSize(note);
      if (size === undefined) return note;
      const held = await this.#cosignatureLines(size);
      await Promise.all(
        this.#witnesses
          .filter(({ endpoint }) => !held.has(endpoint.name))
          .map((witness) =>
            this.#submit(witness, note, size).catch((error: unknown) => this.#onError(error)),
          ),
      );
      return withSignatureLines(note, [...(await this.#cosignatureLines(size)).values()]);
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** The newest checkpoint with a quorum of cosignatures (with them), else the newest one; undefined if none. */
  async published(): Promise<string | undefined> {
    const names = this.#witnesses.map(({ endpoint }) => endpoint.name);
    const witnessed = await this.#db
      .selectFrom('audit_checkpoints as c')
      .select(['c.size', 'c.note'])
      .where((eb) =>
        eb(
          eb
            .selectFrom('audit_cosignatures as w')
            .select((w) => w.fn.countAll().as('n'))
            .whereRef('w.size', '=', 'c.size')
            .where('w.witness', 'in', names),
          '>=',
          this.quorum,
        ),
      )
      .orderBy('c.size', 'desc')
      .limit(1)
      .executeTakeFirst();
    const row =
      witnessed ??
      (await this.#db
        .selectFrom('audit_checkpoints')
        .select(['size', 'note'])
        .orderBy('size', 'desc')
        .limit(1)
        .executeTakeFirst());
    if (!row) return undefined;
    const lines = await this.#cosignatureLines(Number(row.size));
    return withSignatureLines(row.note, [...lines.values()]);
  }

  async #cosignatureLines(size: number): Promise<Map<string, string>> {
    const rows = await this.#db
      .selectFrom('audit_cosignatures')
      .select(['witness', 'line'])
      .where('size', '=', size)
      .orderBy('witness')
      .execute();
    const names = new Set(this.#witnesses.map(({ endpoint }) => endpoint.name));
    return new Map(rows.filter((r) => names.has(r.witness)).map((r) => [r.witness, r.line]));
  }

  /** The size this log last had `witness` cosign, as far as the store knows (0: never). */
  async #lastCosigned(witness: string): Promise<number> {
    const row = await this.#db
      .selectFrom('audit_cosignatures')
      .select((eb) => eb.fn.max('size').as('size'))
      .where('witness', '=', witness)
      .executeTakeFirst();
    return row?.size === null || row?.size === undefined ? 0 : Number(row.size);
  }

  async #submit(witness: Witness, note: string, size: number): Promise<void> {
    const { name } = witness.endpoint;
    let old = Math.min(await this.#lastCosigned(name), size);
    // One retry: a witness that answers 409 names the size it last cosigned (another node, a lost answer).
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof = old === 0 || old === size ? [] : await this.#prove(old, size);
      const body = `old ${old}\n${proof.map((hex) => `${Buffer.from(hex, 'hex').toString('base64')}\n`).join('')}\n${note}`;
      const response = await fetch(new URL('add-checkpoint', withSlash(witness.endpoint.url)), {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const text = await response.text();
      if (response.status === 409 && /^(0|[1-9][0-9]{0,15})\n$/.test(text) && attempt === 0) {
        const latest = Number(text.trim());
        if (latest > size)
          throw new WitnessRefused(name, 409, `it cosigned ${latest} events, more than ${size}`);
        old = latest;
        continue;
      }
      if (response.status !== 200) throw new WitnessRefused(name, response.status, text.slice(0, 200).trim());
      const lines = text
        .split('\n')
        .filter(Boolean)
        .map((line) => `${line}\n`);
      const line = lines.find(
        (l) => validCosignatures(withSignatureLines(note, [l]), [witness.verifier]).length > 0,
      );
      if (!line) throw new WitnessRefused(name, 200, 'no valid cosignature in its answer');
      await this.#db
        .insertInto('audit_cosignatures')
        .values({ size, witness: name, line, created_at: new Date().toISOString() })
        .onConflict((oc) => oc.columns(['size', 'witness']).doNothing())
        .execute();
      return;
    }
  }
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * Asks each witness the size it last cosigned for this log (a submission with old size 0, which a
 * witness that has cosigned before answers 409 with that size). A log whose newest checkpoint is
 * smaller than what a witness cosigned lost its tail, re-signed or not.
 */
export async function askWitnessedSizes(
  witnesses: readonly WitnessEndpoint[],
  newestNote: string,
  timeoutMs = 5000,
): Promise<Array<{ name: string; size?: number; problem?: string }>> {
  return Promise.all(
    witnesses.map(async ({ name, url }) => {
      try {
        const response = await fetch(new URL('add-checkpoint', withSlash(url)), {
          method: 'POST',
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          body: `old 0\n\n${newestNote}`,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await response.text();
        if (response.status === 409 && /^(0|[1-9][0-9]{0,15})\n$/.test(text))
          return { name, size: Number(text) };
        // 200: it had never cosigned this log, and has now cosigned the newest checkpoint.
        if (response.status === 200) return { name, size: claimedSize(newestNote) ?? 0 };
        return { name, problem: `HTTP ${response.status}: ${text.slice(0, 200).trim()}` };
      } catch (error) {
        return { name, problem: error instanceof Error ? error.message : 'no answer' };
      }
    }),
  );
}
