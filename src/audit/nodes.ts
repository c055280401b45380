/** Reading stored subtree hashes: level 0 from audit_events.leaf_hash, levels ≥ 1 from audit_nodes. */
import type { Kysely } from 'kysely';
import { AuditIntegrityError } from '../errors/index.js';
import type { Database } from '../store/index.js';
import { hashEquals, nodeKey, nodesRead, type GetNode, type NodeId } from './merkle.js';

type Reader = Kysely<Database>;

const chunkSize = 400;
const hexHash = /^[0-9a-f]{64}$/;

/** A stored hex hash as bytes; the store is outside the trust boundary, so its shape is checked. */
export function parseStoredHash(hex: string, where: Record<string, unknown>): Buffer {
  if (typeof hex !== 'string' || !hexHash.test(hex)) {
    throw new AuditIntegrityError('a stored audit hash is malformed', where);
  }
  return Buffer.from(hex, 'hex');
}

/** Constant-time comparison of a computed hash with a hex string that may be malformed. */
export function matchesHex(hash: Uint8Array, hex: unknown): boolean {
  return typeof hex === 'string' && hexHash.test(hex) && hashEquals(hash, Buffer.from(hex, 'hex'));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Reads the given nodes: one query for leaves, one for interior nodes (per 400 ids). */
export async function readNodes(db: Reader, ids: readonly NodeId[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const leaves = ids.filter((id) => id.level === 0).map((id) => id.index);
  for (const part of chunks(leaves, chunkSize)) {
    const rows = await db
      .selectFrom('audit_events')
      .select(['idx', 'leaf_hash'])
      .where('idx', 'in', part)
      .execute();
    for (const row of rows) {
      found.set(
        nodeKey(0, Number(row.idx)),
        parseStoredHash(row.leaf_hash, { level: 0, index: Number(row.idx) }),
      );
    }
  }
  const interior = ids.filter((id) => id.level > 0);
  for (const part of chunks(interior, chunkSize)) {
    const byLevel = new Map<number, number[]>();
    for (const id of part) byLevel.set(id.level, [...(byLevel.get(id.level) ?? []), id.index]);
    const rows = await db
      .selectFrom('audit_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) =>
        eb.or(
          [...byLevel].map(([level, indexes]) => eb.and([eb('level', '=', level), eb('idx', 'in', indexes)])),
        ),
      )
      .execute();
    for (const row of rows) {
      const where = { level: Number(row.level), index: Number(row.idx) };
      found.set(nodeKey(where.level, where.index), parseStoredHash(row.hash, where));
    }
  }
  return found;
}

/** A GetNode over read nodes; a node the store lacks is an integrity failure. */
export function getterOf(nodes: ReadonlyMap<string, Buffer>): GetNode {
  return (level, index) => {
    const hash = nodes.get(nodeKey(level, index));
    if (!hash)
      throw new AuditIntegrityError('a subtree hash is missing from the audit store', { level, index });
    return hash;
  };
}

/** Runs a pure computation over stored nodes, reading exactly the nodes it needs first. */
export async function withStoredNodes<T>(db: Reader, compute: (get: GetNode) => T): Promise<T> {
  const nodes = await readNodes(db, nodesRead(compute));
  return compute(getterOf(nodes));
}
