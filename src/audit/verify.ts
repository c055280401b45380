/**
 * The streaming log verifier shared by `verifyStoredLog` and `verifyExportFile`: fed events in order and
 * checkpoints at any time, it recomputes the tree and checks every checkpoint when the tree reaches its
 * size. Memory is O(log n) plus checkpoints that arrive before their size.
 *
 * First bad index. A per-event finding (missing, malformed, wrong leaf hash) names its exact index. A
 * checkpoint that fails names the size of the last checkpoint that verified before it: every event
 * below that is vouched for, the change lies between the two (exact when checkpoints are dense), and a
 * stored subtree hash that disagrees narrows it further. A checkpoint beyond the end of the log names the
 * log's size (truncated tail).
 */
import { openCheckpoint, claimedSize, type CheckpointProblem, type NoteVerifier } from './checkpoint.js';
import { canonicalJson, isAuditEvent, parseTombstone } from './event.js';
import { appendLeaf, emptyRange, hashEquals, hashLeaf, rangeRoot, type CompactRange } from './merkle.js';
import { matchesHex } from './nodes.js';

export type VerifyProblemCode =
  | 'EVENT_MISSING'
  | 'EVENT_OUT_OF_ORDER'
  | 'EVENT_MALFORMED'
  | 'LEAF_HASH_MISMATCH'
  | 'NODE_MISSING'
  | 'NODE_MISMATCH'
  | CheckpointProblem
  | 'CHECKPOINT_ROOT_MISMATCH'
  | 'CHECKPOINT_OUT_OF_ORDER'
  | 'CHECKPOINT_NOT_WITNESSED'
  | 'TRUNCATED'
  | 'EXPORT_MALFORMED'
  | 'EXPORT_INCOMPLETE';

export type VerifyReport =
  | { readonly ok: true; readonly size: number; readonly checkpoints: number }
  | {
      readonly ok: false;
      readonly firstBadIndex: number;
      readonly code: VerifyProblemCode;
      readonly problem: string;
    };

type Failure = Extract<VerifyReport, { ok: false }>;

/** What the holder of stored subtree hashes says about a node the verifier just completed. */
export type NodeCheck = (
  level: number,
  index: number,
  hash: Buffer,
) => 'NODE_MISSING' | 'NODE_MISMATCH' | undefined;

/** A checkpoint as fed: its note and, from a store, the columns saved beside it. */
export interface CheckpointInput {
  readonly note: string;
  readonly size?: number;
  readonly rootHash?: string;
}

/**
 * A checkpoint this verifier found the log to match, and the recomputed tree at its size: a later run
 * can start there and verify only what was appended since.
 */
export interface VerifiedPoint {
  readonly range: CompactRange;
  readonly root: Buffer;
}

interface Pending extends CheckpointInput {
  readonly claimed: number;
}

export class LogVerifier {
  readonly #verifier: NoteVerifier;
  readonly #checkNode: NodeCheck | undefined;
  #range: CompactRange = emptyRange;
  /** Size of the largest checkpoint that verified: events below it are vouched for. */
  #vouched = 0;
  #verifiedCheckpoints = 0;
  #pending: Pending[] = [];
  #eventFinding: Failure | undefined;
  #nodeFinding: { start: number; end: number; code: VerifyProblemCode; problem: string } | undefined;
  #verdict: Failure | undefined;
  #verified: VerifiedPoint | undefined;

  /** `from`: a point an earlier run verified; events and checkpoints are then fed from its size on. */
  constructor(verifier: NoteVerifier, checkNode?: NodeCheck, from?: VerifiedPoint) {
    this.#verifier = verifier;
    this.#checkNode = checkNode;
    if (from) {
      this.#range = from.range;
      this.#vouched = from.range.size;
      this.#verified = from;
    }
  }

  /** The largest checkpoint verified so far (or the starting point). */
  get verified(): VerifiedPoint | undefined {
    return this.#verified;
  }

  /** Events fed so far: the size of the recomputed tree. */
  get size(): number {
    return this.#range.size;
  }

  /** True once the verdict is known; feeding more changes nothing. */
  get done(): boolean {
    return this.#verdict !== undefined;
  }

  /**
   * The next event in log order: the index it claims, its bytes as stored (hashed as they are) and the
   * leaf hash stored beside it.
   */
  event(claimedIndex: number, text: string, leafHash: unknown): void {
    if (this.#verdict) return;
    const position = this.#range.size;
    if (claimedIndex !== position) {
      this.#noteEvent(
        position,
        claimedIndex > position ? 'EVENT_MISSING' : 'EVENT_OUT_OF_ORDER',
        claimedIndex > position
          ? `event ${position} is missing (the next event is numbered ${claimedIndex})`
          : `event ${position} is numbered ${claimedIndex}: events are duplicated or out of order`,
      );
    }
    // A tombstone's body was rewritten on purpose (purge, erasure): its stored leaf hash enters the tree
    // as it is, so the signed checkpoints still decide whether that hash is the one that was appended.
    const tombstone = parseTombstone(text) !== undefined;
    if (!tombstone && !isCanonicalEvent(text)) {
      this.#noteEvent(
        position,
        'EVENT_MALFORMED',
        `event ${position} is not the canonical JSON of an audit event`,
      );
    }
    const stored = tombstone && typeof leafHash === 'string' && /^[0-9a-f]{64}$/.test(leafHash);
    const leaf = stored ? Buffer.from(leafHash, 'hex') : hashLeaf(Buffer.from(text, 'utf8'));
    if (!stored && !matchesHex(leaf, leafHash)) {
      this.#noteEvent(
        position,
        'LEAF_HASH_MISMATCH',
        `event ${position} does not hash to its stored leaf hash`,
      );
    }
    this.#range = appendLeaf(this.#range, leaf, (level, index, hash) => this.#onNode(level, index, hash));
    this.#drain();
  }

  /** A signed checkpoint; checked when the tree reaches its size (at once if it already has). */
  checkpoint(input: CheckpointInput): void {
    if (this.#verdict) return;
    const claimed = claimedSize(input.note);
    if (claimed === undefined) {
      return this.#failCheckpoint(
        'CHECKPOINT_MALFORMED',
        'a checkpoint is not a well-formed signed note',
        Infinity,
      );
    }
    if (input.size !== undefined && input.size !== claimed) {
      return this.#failCheckpoint(
        'CHECKPOINT_MALFORMED',
        `checkpoint stored for size ${input.size} signs size ${claimed}`,
        Math.min(input.size, claimed),
      );
    }
    if (claimed < this.#range.size) {
      return this.#failCheckpoint(
        'CHECKPOINT_OUT_OF_ORDER',
        `checkpoint ${claimed} arrived after event ${this.#range.size - 1}`,
        claimed,
      );
    }
    const at = this.#pending.findIndex((p) => p.claimed > claimed);
    this.#pending.splice(at < 0 ? this.#pending.length : at, 0, { ...input, claimed });
    this.#drain();
  }

  /** A problem of the input itself (an export line), at the current position. */
  inputProblem(code: VerifyProblemCode, problem: string): void {
    if (this.#verdict) return;
    this.#noteEvent(this.#range.size, code, problem);
  }

  finish(): VerifyReport {
    if (this.#verdict) return this.#verdict;
    const beyond = this.#pending[0];
    if (beyond) {
      const opened = openCheckpoint(beyond.note, this.#verifier);
      if (!opened.ok) {
        this.#failCheckpoint(opened.code, `checkpoint ${beyond.claimed}: ${opened.detail}`, beyond.claimed);
      } else {
        this.#verdict = this.#eventFinding ?? {
          ok: false,
          firstBadIndex: this.#range.size,
          code: 'TRUNCATED',
          problem: `the log ends at ${this.#range.size} events but a checkpoint was signed for ${beyond.claimed}`,
        };
      }
      return this.#verdict as Failure;
    }
    if (this.#eventFinding) return this.#eventFinding;
    if (this.#nodeFinding) {
      const { start, code, problem } = this.#nodeFinding;
      return { ok: false, firstBadIndex: start, code, problem };
    }
    return { ok: true, size: this.#range.size, checkpoints: this.#verifiedCheckpoints };
  }

  #noteEvent(index: number, code: VerifyProblemCode, problem: string): void {
    this.#eventFinding ??= { ok: false, firstBadIndex: index, code, problem };
  }

  #onNode(level: number, index: number, hash: Buffer): void {
    if (this.#nodeFinding || !this.#checkNode) return;
    const code = this.#checkNode(level, index, hash);
    if (!code) return;
    const start = index * 2 ** level;
    this.#nodeFinding = {
      start,
      end: start + 2 ** level,
      code,
      problem: `the stored subtree hash over events [${start}, ${start + 2 ** level}) is ${code === 'NODE_MISSING' ? 'missing' : 'not the hash of those events'}`,
    };
  }

  #drain(): void {
    while (!this.#verdict && this.#pending.length > 0 && this.#pending[0].claimed === this.#range.size) {
      this.#check(this.#pending.shift() as Pending);
    }
  }

  #check(input: Pending): void {
    const size = input.claimed;
    const opened = openCheckpoint(input.note, this.#verifier);
    if (!opened.ok) return this.#failCheckpoint(opened.code, `checkpoint ${size}: ${opened.detail}`, size);
    const { root } = opened.checkpoint;
    if (input.rootHash !== undefined && !matchesHex(root, input.rootHash)) {
      return this.#failCheckpoint(
        'CHECKPOINT_MALFORMED',
        `checkpoint ${size}: stored root differs from the note`,
        size,
      );
    }
    if (!hashEquals(rangeRoot(this.#range), root)) {
      return this.#failCheckpoint(
        'CHECKPOINT_ROOT_MISMATCH',
        `the first ${size} events do not hash to the root signed in checkpoint ${size}`,
        size,
      );
    }
    this.#vouched = Math.max(this.#vouched, size);
    this.#verified = { range: this.#range, root };
    this.#verifiedCheckpoints += 1;
    // A valid checkpoint above an event finding vouches for everything before it: the finding stands.
    if (this.#eventFinding && size > this.#eventFinding.firstBadIndex) this.#verdict = this.#eventFinding;
  }

  /** A checkpoint failed: the change lies in [vouched, size); name its first index as well as we can. */
  #failCheckpoint(code: VerifyProblemCode, problem: string, size: number): void {
    if (this.#eventFinding && this.#eventFinding.firstBadIndex < size) {
      this.#verdict = this.#eventFinding;
      return;
    }
    let index = this.#vouched;
    const node = this.#nodeFinding;
    if (node && node.end > index && node.start < size) index = Math.max(index, node.start);
    this.#verdict = { ok: false, firstBadIndex: index, code, problem };
  }
}

/** Stored bytes must be exactly the canonical JSON of a well-formed event. */
function isCanonicalEvent(text: string): boolean {
  try {
    // Attacker-controlled: event text from the store or an export line.
    const value: unknown = JSON.parse(text);
    return isAuditEvent(value) && canonicalJson(value) === text;
  } catch {
    return false;
  }
}
