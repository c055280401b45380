import type { BundleEntry, EntryType } from './entries.js';
import { BundleInvalid } from './errors.js';
import type { ScanLimits } from './types.js';

/**
 * A streaming tar reader (POSIX ustar with pax `x` headers, GNU `L`/`K` long names, old v7 headers),
 * enough for `npm pack`, GNU tar and bsdtar output. Headers are untrusted: each one's checksum is
 * verified, sizes are bounded, and an entry's data is only buffered when the caller asks for it; a
 * skipped entry is read past in chunks.
 */

const BLOCK = 512;
/** A pax or GNU long-name record is metadata; real ones are a few hundred bytes. */
const MAX_META = 64 * 1024;

export async function* readTar(
  chunks: AsyncIterable<Buffer>,
  limits: ScanLimits,
  consumed: () => number,
): AsyncGenerator<BundleEntry> {
  const input = new ByteQueue(chunks[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let count = 0;

  for (;;) {
    const header = await input.take(BLOCK);
    if (header === undefined) return; // no end-of-archive blocks: tolerated, as tar itself does
    if (header.length < BLOCK) throw new BundleInvalid('corrupt tar archive: truncated header');
    if (isZero(header)) return;
    if (!checksumValid(header)) {
      throw new BundleInvalid(count === 0 ? 'not a tar archive' : 'corrupt tar archive: bad header checksum');
    }
    const flag = String.fromCharCode(header[156] as number);
    const size = parseNumber(header.subarray(124, 136));
    if (size === undefined || size > limits.maxTotalBytes) {
      throw new BundleInvalid('corrupt tar archive: an entry size is invalid or beyond the limit');
    }

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new BundleInvalid('corrupt tar archive: oversized extended header');
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      const data = await input.take(padded);
      if (data === undefined || data.length < padded)
        throw new BundleInvalid('corrupt tar archive: truncated');
      const body = data.subarray(0, size);
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'g') globalPax = { ...globalPax, ...parsePax(body) };
      else if (flag === 'L') longName = cString(body);
      // 'K' (a long link target) is read past: links are reported, never followed.
      continue;
    }

    count++;
    if (count > limits.maxEntries) {
      throw new BundleInvalid(`the tar holds more than the limit of ${limits.maxEntries} entries`);
    }
    const attributes = { ...globalPax, ...pax };
    const ustar = header.subarray(257, 262).toString('latin1') === 'ustar';
    const prefix = ustar ? cString(header.subarray(345, 500)) : '';
    const baseName = cString(header.subarray(0, 100));
    const name = attributes.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const paxSize = attributes.size === undefined ? undefined : Number(attributes.size);
    const dataSize = paxSize !== undefined && Number.isSafeInteger(paxSize) && paxSize >= 0 ? paxSize : size;
    if (dataSize > limits.maxTotalBytes) {
      throw new BundleInvalid('corrupt tar archive: an entry size is beyond the limit');
    }
    const dataPadded = Math.ceil(dataSize / BLOCK) * BLOCK;
    pax = {};
    longName = undefined;

    const type = entryType(flag, name);
    // Links and directories carry no data of their own, whatever their size field says.
    const stored = type === 'file' || type === 'other' ? dataPadded : 0;
    let taken = false;
    yield {
      name,
      type,
      size: type === 'file' ? dataSize : 0,
      consumed: consumed(),
      read: async () => {
        if (taken || type !== 'file') throw new TypeError('read() once, and only for files');
        taken = true;
        const data = await input.take(stored);
        if (data === undefined || data.length < stored)
          throw new BundleInvalid('corrupt tar archive: truncated');
        return data.subarray(0, dataSize);
      },
    };
    if (!taken && stored > 0) {
      if (!(await input.skip(stored))) throw new BundleInvalid('corrupt tar archive: truncated');
    }
  }
}

function entryType(flag: string, name: string): EntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      // Old archives mark directories by a trailing slash only.
      return name.endsWith('/') ? 'directory' : 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

function isZero(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces. */
function checksumValid(header: Buffer): boolean {
  const stored = parseNumber(header.subarray(148, 156));
  if (stored === undefined) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] as number);
  return sum === stored;
}

/** Octal ASCII, NUL- or space-terminated; or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Buffer): number | undefined {
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] as number);
      if (!Number.isSafeInteger(value)) return undefined;
    }
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]{1,22}$/.test(text)) return undefined;
  const value = parseInt(text, 8);
  return Number.isSafeInteger(value) ? value : undefined;
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** pax records: `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(body: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let p = 0;
  while (p < body.length) {
    const space = body.indexOf(0x20, p);
    if (space < 0) break;
    const length = Number(body.subarray(p, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - p || p + length > body.length) {
      throw new BundleInvalid('corrupt tar archive: bad pax record');
    }
    const record = body.subarray(space + 1, p + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) {
      const key = record.slice(0, eq);
      // Only keys the reader uses; an attacker cannot plant `__proto__` or the like in the result.
      if (key === 'path' || key === 'size') records[key] = record.slice(eq + 1);
    }
    p += length;
  }
  return records;
}

/** Exact-size reads over a stream of chunks of any size. */
class ByteQueue {
  readonly #source: AsyncIterator<Buffer>;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #done = false;

  constructor(source: AsyncIterator<Buffer>) {
    this.#source = source;
  }

  /** `n` bytes, fewer at the end of the stream, undefined when it already ended. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.#buffered < n && !this.#done) await this.#pull();
    if (this.#buffered === 0 && n > 0) return undefined;
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const taken = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(taken.length);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }

  /** Drops `n` bytes without keeping them; false when the stream ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.#buffered === 0) {
        if (this.#done) return false;
        await this.#pull();
        continue;
      }
      const head = this.#chunks[0]!;
      if (head.length <= left) {
        left -= head.length;
        this.#buffered -= head.length;
        this.#chunks.shift();
      } else {
        this.#chunks[0] = head.subarray(left);
        this.#buffered -= left;
        left = 0;
      }
    }
    return true;
  }

  async #pull(): Promise<void> {
    const next = await this.#source.next();
    if (next.done) this.#done = true;
    else if (next.value.length > 0) {
      this.#chunks.push(next.value);
      this.#buffered += next.value.length;
    }
  }
}
