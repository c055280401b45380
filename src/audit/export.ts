/**
 * Export as JSON lines, and offline verification of an export with only the verifier key.
 *
 *   {"type":"header","format":"gatehouse-audit-export","version":1,"events":N,"checkpoints":C}
 *   {"type":"event","index":0,"leaf_hash":"<hex>","event":{...}}
 *   {"type":"checkpoint","size":1,"note":"<signed note>"}        (after the event that completes it;
 *                                                                 the note carries its witnesses' cosignatures)
 *   ...
 *   {"type":"end","events":N,"checkpoints":C}
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { parseVerifierKey } from './checkpoint.js';
import { canonicalJson } from './event.js';
import {
  CheckpointReader,
  snapshotBounds,
  storedEvents,
  type StoredCheckpoint,
  type StoredEvent,
} from './snapshot.js';
import { withSignatureLines } from './cosignature.js';
import { newestWitnessed, type WitnessPolicy } from './quorum.js';
import { withWitnesses, type StoredLogReport } from './verify-store.js';
import { LogVerifier } from './verify.js';

const format = 'gatehouse-audit-export';
const maxLineLength = 256 * 1024;

export async function exportLog(
  db: Db,
  out: string,
  onProgress?: (done: number, total: number) => void,
): Promise<{ events: number; checkpoints: number }> {
  const { size, checkpointSize } = await snapshotBounds(db);
  const checkpointCount = await db
    .selectFrom('audit_checkpoints')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('size', '<=', checkpointSize)
    .executeTakeFirstOrThrow();
  const checkpoints = new CheckpointReader(db, checkpointSize);
  const cosignatures = await cosignatureLines(db, checkpointSize);
  // Written beside the target and renamed into place: a reader never sees half an export.
  const temporary = `${out}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const file = await open(temporary, 'wx');
  let events = 0;
  let written = 0;
  try {
    const header = {
      type: 'header',
      format,
      version: 1,
      events: size,
      checkpoints: Number(checkpointCount.count),
    };
    await file.write(`${JSON.stringify(header)}\n`);
    for await (const page of storedEvents(db, size)) {
      const lines: string[] = [];
      for (const row of page) {
        for (let next = await checkpoints.takeUpTo(events); next; next = await checkpoints.takeUpTo(events)) {
          lines.push(checkpointLine(next, cosignatures));
          written += 1;
        }
        lines.push(eventLine(row));
        events += 1;
      }
      await file.write(lines.join(''));
      onProgress?.(events, Math.max(size, events));
    }
    const rest: string[] = [];
    for (let next = await checkpoints.take(); next; next = await checkpoints.take()) {
      rest.push(checkpointLine(next, cosignatures));
      written += 1;
    }
    rest.push(`${JSON.stringify({ type: 'end', events, checkpoints: written })}\n`);
    await file.write(rest.join(''));
    onProgress?.(events, Math.max(size, events));
    await file.sync();
    await file.close();
    await rename(temporary, out);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
  return { events, checkpoints: written };
}

function eventLine(row: StoredEvent): string {
  const prefix = `{"type":"event","index":${row.idx},"leaf_hash":${JSON.stringify(row.leaf_hash)},`;
  try {
    JSON.parse(row.event);
  } catch {
    // Not JSON at all: carried as a string so the verifier names this event rather than the line.
    return `${prefix}"event_text":${JSON.stringify(row.event)}}\n`;
  }
  return `${prefix}"event":${row.event}}\n`;
}

/** The witnesses' cosignature lines of each checkpoint up to `upTo`, by size. */
async function cosignatureLines(db: Db, upTo: number): Promise<Map<number, string[]>> {
  const rows = await db
    .selectFrom('audit_cosignatures')
    .select(['size', 'line'])
    .where('size', '<=', upTo)
    .orderBy('size')
    .orderBy('witness')
    .execute();
  const bySize = new Map<number, string[]>();
  for (const row of rows) bySize.set(Number(row.size), [...(bySize.get(Number(row.size)) ?? []), row.line]);
  return bySize;
}

function checkpointLine(checkpoint: StoredCheckpoint, cosignatures: ReadonlyMap<number, string[]>): string {
  const note = withSignatureLines(checkpoint.note, cosignatures.get(checkpoint.size) ?? []);
  return `${JSON.stringify({ type: 'checkpoint', size: checkpoint.size, note })}\n`;
}

/**
 * `witnesses`: as for the stored log, the export's newest checkpoint must carry a quorum of their
 * cosignatures (a copy of a truncated, re-signed log has none past what the witnesses saw).
 */
export async function verifyExportFile(
  file: string,
  verifierKey: string,
  onProgress?: (done: number, total: number) => void,
  witnesses?: WitnessPolicy,
): Promise<StoredLogReport> {
  const verifier = parseVerifierKey(verifierKey);
  const handle = await open(file, 'r').catch((cause: unknown) => {
    throw new InputError('the export file cannot be read', { cause: (cause as NodeJS.ErrnoException).code });
  });
  await handle.close();
  const log = new LogVerifier(verifier);
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let total = 0;
  let ended = false;
  // The checkpoints read, for the witness quorum once the log verifies.
  const seen: { size: number; note: string }[] = [];
  const malformed = (what: string) =>
    log.inputProblem('EXPORT_MALFORMED', `export line ${lineNumber}: ${what}`);
  try {
    for await (const line of lines) {
      lineNumber += 1;
      // Attacker-controlled: every line of an export is untrusted. Bounded, parsed, and checked for shape
      // before use; the event itself is hashed as the canonical JSON of what the line carries.
      if (line.length > maxLineLength) {
        malformed('too long');
        break;
      }
      let record: Record<string, unknown>;
      try {
        const value: unknown = JSON.parse(line);
        if (typeof value !== 'object' || value === null || Array.isArray(value))
          throw new Error('not an object');
        record = value as Record<string, unknown>;
      } catch {
        malformed('not a JSON object');
        break;
      }
      if (ended) {
        malformed('content after the end line');
        break;
      }
      if (lineNumber === 1) {
        if (record.type !== 'header' || record.format !== format || record.version !== 1) {
          malformed('not a Gatehouse audit export header');
          break;
        }
        total = Number.isSafeInteger(record.events) ? (record.events as number) : 0;
        continue;
      }
      if (record.type === 'event') {
        const text = eventText(record);
        if (!Number.isSafeInteger(record.index) || text === undefined) {
          malformed('an event line lacks an index or an event');
          break;
        }
        log.event(record.index as number, text, record.leaf_hash);
        if (log.size % 1000 === 0) onProgress?.(log.size, Math.max(total, log.size));
      } else if (record.type === 'checkpoint') {
        if (typeof record.note !== 'string') {
          malformed('a checkpoint line lacks its note');
          break;
        }
        const size = Number.isSafeInteger(record.size) ? (record.size as number) : undefined;
        log.checkpoint({ note: record.note, size });
        if (size !== undefined) seen.push({ size, note: record.note });
      } else if (record.type === 'end') {
        ended = true;
        if (record.events !== log.size) {
          malformed(`the end line counts ${String(record.events)} events, the file has ${log.size}`);
          break;
        }
      } else {
        malformed('unknown line type');
        break;
      }
      if (log.done) break;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  if (lineNumber === 0) malformed('empty file');
  else if (!ended)
    log.inputProblem('EXPORT_INCOMPLETE', `the export stops after ${log.size} events without its end line`);
  onProgress?.(log.size, Math.max(total, log.size));
  const report = log.finish();
  if (!report.ok || !witnesses) return report;
  const newestFirst = async function* () {
    yield seen.sort((a, b) => b.size - a.size);
  };
  return withWitnesses(report, await newestWitnessed(newestFirst(), witnesses), witnesses);
}

/** The bytes an export line's event is hashed as: the canonical JSON of its `event` member. */
function eventText(record: Record<string, unknown>): string | undefined {
  if (typeof record.event_text === 'string') return record.event_text;
  if (record.event === undefined) return undefined;
  try {
    return canonicalJson(record.event);
  } catch {
    return undefined;
  }
}
