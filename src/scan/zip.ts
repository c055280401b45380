import type { FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import type { BundleEntry, EntryType } from './entries.js';
import { BundleInvalid } from './errors.js';
import type { ScanLimits } from './types.js';

/**
 * A zip reader for bundles (APPNOTE.TXT 6.3): the central directory is the index, each entry is read
 * from its local header with random access, stored or deflated entries only. Everything in the file is
 * untrusted, so every offset and size is checked against the file before it is used:
 *  - declared sizes add up to at most `maxTotalBytes`, and an entry whose uncompressed size is more than
 *    `maxRatio` times its compressed size is refused (classic zip bombs);
 *  - entry data may not overlap another entry or the central directory (the overlapping-entry bomb
 *    that makes many entries inflate the same compressed bytes);
 *  - inflation stops at the declared size, and the result must match it and its CRC-32.
 */

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const MiB = 1024 * 1024;
/** The central directory of a bundle within the entry limit is far smaller. */
const MAX_DIRECTORY = 64 * MiB;

interface CentralEntry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly offset: number;
  readonly type: EntryType;
}

export async function* readZip(
  file: FileHandle,
  fileSize: number,
  limits: ScanLimits,
): AsyncGenerator<BundleEntry> {
  const { entries, directoryOffset } = await readDirectory(file, fileSize, limits);
  // Where each entry's data must end: the next local header or the central directory.
  const offsets = [...new Set(entries.map((e) => e.offset))].sort((a, b) => a - b);
  if (offsets.length < entries.length) throw new BundleInvalid('zip entries share their data (a zip bomb)');
  const boundary = new Map<number, number>();
  offsets.forEach((offset, i) => boundary.set(offset, offsets[i + 1] ?? directoryOffset));

  for (const entry of entries) {
    const end = boundary.get(entry.offset) as number;
    const unreadable = unreadableReason(entry);
    yield {
      name: entry.name,
      type: entry.type,
      size: entry.size,
      consumed: entry.offset,
      ...(unreadable ? { unreadable } : {}),
      read: () => readEntry(file, entry, end),
    };
  }
}

async function readDirectory(
  file: FileHandle,
  fileSize: number,
  limits: ScanLimits,
): Promise<{ entries: CentralEntry[]; directoryOffset: number }> {
  if (fileSize < EOCD_SIZE) throw new BundleInvalid('not a zip archive: too short');
  const tailSize = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
  const tail = await readAt(file, fileSize - tailSize, tailSize);
  let at = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    // The comment must reach exactly to the end of the file, so a signature inside it is not taken.
    if (tail.readUInt32LE(i) === EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new BundleInvalid('not a zip archive: no end of central directory record');
  const disk = tail.readUInt16LE(at + 4);
  const directoryDisk = tail.readUInt16LE(at + 6);
  const count = tail.readUInt16LE(at + 10);
  const directorySize = tail.readUInt32LE(at + 12);
  const directoryOffset = tail.readUInt32LE(at + 16);
  if (disk !== 0 || directoryDisk !== 0) throw new BundleInvalid('multi-part zip archives are not supported');
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    throw new BundleInvalid('ZIP64 archives are not supported: a microapp bundle is far below 4 GiB');
  }
  if (count > limits.maxEntries) {
    throw new BundleInvalid(`the zip holds ${count} entries, more than the limit of ${limits.maxEntries}`);
  }
  const eocdOffset = fileSize - tailSize + at;
  if (directoryOffset + directorySize > eocdOffset || directorySize > MAX_DIRECTORY) {
    throw new BundleInvalid('corrupt zip archive: the central directory lies outside the file');
  }
  const directory = await readAt(file, directoryOffset, directorySize);

  const entries: CentralEntry[] = [];
  let total = 0;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > directory.length || directory.readUInt32LE(p) !== CENTRAL) {
      throw new BundleInvalid('corrupt zip archive: bad central directory entry');
    }
    const madeBy = directory.readUInt16LE(p + 4) >> 8;
    const flags = directory.readUInt16LE(p + 8);
    const method = directory.readUInt16LE(p + 10);
    const crc = directory.readUInt32LE(p + 16);
    const compressedSize = directory.readUInt32LE(p + 20);
    const size = directory.readUInt32LE(p + 24);
    const nameLength = directory.readUInt16LE(p + 28);
    const extraLength = directory.readUInt16LE(p + 30);
    const commentLength = directory.readUInt16LE(p + 32);
    const externalAttributes = directory.readUInt32LE(p + 38);
    const offset = directory.readUInt32LE(p + 42);
    const next = p + 46 + nameLength + extraLength + commentLength;
    if (next > directory.length)
      throw new BundleInvalid('corrupt zip archive: entry runs past the directory');
    if (compressedSize === 0xffffffff || size === 0xffffffff || offset === 0xffffffff) {
      throw new BundleInvalid('ZIP64 archives are not supported: a microapp bundle is far below 4 GiB');
    }
    if (offset + 30 + compressedSize > directoryOffset) {
      throw new BundleInvalid('corrupt zip archive: entry data lies outside the file');
    }
    const rawName = directory.subarray(p + 46, p + 46 + nameLength);
    // Bit 11: the name is UTF-8; otherwise CP437, read as Latin-1, which keeps ASCII exact.
    const name = rawName.toString(flags & 0x800 ? 'utf8' : 'latin1');
    total += size;
    if (total > limits.maxTotalBytes) {
      throw new BundleInvalid(
        `the zip expands to more than ${Math.floor(limits.maxTotalBytes / MiB)} MiB (a zip bomb or not a microapp bundle)`,
      );
    }
    if (size > MiB && size > limits.maxRatio * Math.max(1, compressedSize)) {
      throw new BundleInvalid(
        `a zip entry expands more than ${limits.maxRatio} times (a zip bomb); entry ${i + 1} of ${count}`,
      );
    }
    entries.push({
      name,
      flags,
      method,
      crc,
      compressedSize,
      size,
      offset,
      type: entryType(name, madeBy, externalAttributes),
    });
    p = next;
  }
  return { entries, directoryOffset };
}

/** Unix hosts (3) keep the mode in the high 16 bits of the external attributes. */
function entryType(name: string, madeBy: number, externalAttributes: number): EntryType {
  if (madeBy === 3) {
    const kind = (externalAttributes >>> 16) & 0o170000;
    if (kind === 0o120000) return 'symlink';
    if (kind === 0o040000) return 'directory';
    if (kind !== 0 && kind !== 0o100000) return 'other';
  }
  return name.endsWith('/') || name.endsWith('\\') ? 'directory' : 'file';
}

function unreadableReason(entry: CentralEntry): string | undefined {
  if (entry.flags & 0x1) return 'encrypted';
  if (entry.method !== 0 && entry.method !== 8) return `compression method ${entry.method} is not supported`;
  return undefined;
}

async function readEntry(file: FileHandle, entry: CentralEntry, end: number): Promise<Buffer> {
  const reason = unreadableReason(entry);
  if (reason) throw new TypeError(`the entry cannot be read: ${reason}`);
  const header = await readAt(file, entry.offset, 30);
  if (header.readUInt32LE(0) !== LOCAL) throw new BundleInvalid('corrupt zip archive: bad local header');
  const start = entry.offset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + entry.compressedSize > end) {
    throw new BundleInvalid('zip entries overlap (a zip bomb or a corrupt archive)');
  }
  const compressed = await readAt(file, start, entry.compressedSize);
  let data: Buffer;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size)
      throw new BundleInvalid('corrupt zip archive: stored size mismatch');
    data = compressed;
  } else {
    try {
      // One byte more than declared, so an entry that lies about its size is caught rather than cut.
      data = inflateRawSync(compressed, { maxOutputLength: entry.size + 1 });
    } catch (cause) {
      throw new BundleInvalid('corrupt zip archive: an entry does not inflate to its declared size', {
        cause,
      });
    }
  }
  if (data.length !== entry.size || crc32(data) !== entry.crc) {
    throw new BundleInvalid('corrupt zip archive: an entry does not match its size and CRC-32');
  }
  return data;
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await file.read(buffer, read, length - read, position + read);
    if (bytesRead === 0) throw new BundleInvalid('corrupt zip archive: unexpected end of file');
    read += bytesRead;
  }
  return buffer;
}
