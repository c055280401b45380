/**
 * The PostgreSQL sequencer's hashing thread (see sequenced.ts): checks each queued event's canonical
 * form and hashes it, grows the tree by the batch, and encodes the batch's rows for the write, so the
 * sequencer's event loop only moves text.
 */
import { parentPort } from 'node:worker_threads';
import { serveCalls } from './thread.js';
import { growTree, planAppend, queuedLeaf } from './tree.js';

export interface GrowRequest {
  /** The tree's right edge before the batch: size and compact-range hashes (hex). */
  readonly size: number;
  readonly hashes: readonly string[];
  /** Queued events' stored text, oldest first. */
  readonly queued: readonly string[];
  /** The batch's append time, for its rows. */
  readonly createdAt: string;
}

export interface GrowValue {
  /** Per queued text: its leaf hash (hex), or null for a text that is no event. */
  readonly leaves: Array<string | null>;
  readonly size: number;
  readonly hashes: string[];
  /** The write's parameters as JSON: the events' audit_events rows and the new subtree hashes. */
  readonly events: string;
  readonly nodes: string;
}

const port = parentPort;
if (!port) throw new TypeError('hasher-thread.js runs as a worker thread');

serveCalls(port, (request: GrowRequest): GrowValue => {
  const queued = request.queued.map((text) => queuedLeaf(text) ?? null);
  const leaves = queued.flatMap((leaf) => (leaf ? [leaf] : []));
  const range = { size: request.size, hashes: request.hashes.map((hex) => Buffer.from(hex, 'hex')) };
  const growth = growTree(
    range,
    leaves.map((leaf) => leaf.leaf),
  );
  const { events } = planAppend(
    { range, lastLeaf: undefined, lastAppendedAt: request.createdAt },
    leaves,
    request.createdAt,
    growth,
  );
  let next = 0;
  return {
    leaves: queued.map((leaf) => (leaf ? events[next++].leaf_hash : null)),
    size: growth.range.size,
    hashes: growth.range.hashes.map((hash) => hash.toString('hex')),
    events: JSON.stringify(events),
    nodes: JSON.stringify(growth.nodes),
  };
});
