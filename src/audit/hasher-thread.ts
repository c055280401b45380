/**
 * The PostgreSQL sequencer's hashing thread (see sequenced.ts): checks each queued event's canonical
 * form and hashes it, and grows the tree by the batch, so the sequencer's event loop only moves rows.
 */
import { parentPort } from 'node:worker_threads';
import { serveCalls } from './thread.js';
import { growTree, queuedLeaf } from './tree.js';

export interface GrowRequest {
  /** The tree's right edge before the batch: size and compact-range hashes (hex). */
  readonly size: number;
  readonly hashes: readonly string[];
  /** Queued events' stored text, oldest first; then this node's own leaves (hex leaf hashes). */
  readonly queued: readonly string[];
  readonly local: readonly string[];
}

export interface GrowValue {
  /** Per queued text: its leaf hash (hex) and index fields, or null for a text that is no event. */
  readonly queued: Array<{ leaf: string; requestId: string; appId: string | null } | null>;
  readonly size: number;
  readonly hashes: string[];
  readonly nodes: Array<{ level: number; idx: number; hash: string }>;
}

const port = parentPort;
if (!port) throw new TypeError('hasher-thread.js runs as a worker thread');

serveCalls(port, (request: GrowRequest): GrowValue => {
  const queued = request.queued.map((text) => queuedLeaf(text) ?? null);
  const leaves = [
    ...queued.flatMap((leaf) => (leaf ? [leaf.leaf] : [])),
    ...request.local.map((hex) => Buffer.from(hex, 'hex')),
  ];
  const range = { size: request.size, hashes: request.hashes.map((hex) => Buffer.from(hex, 'hex')) };
  const growth = growTree(range, leaves);
  return {
    queued: queued.map((leaf) =>
      leaf ? { leaf: leaf.leaf.toString('hex'), requestId: leaf.requestId, appId: leaf.appId } : null,
    ),
    size: growth.range.size,
    hashes: growth.range.hashes.map((hash) => hash.toString('hex')),
    nodes: growth.nodes,
  };
});
