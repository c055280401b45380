import { crc32, deflateRawSync, gzipSync } from 'node:zlib';

/**
 * Archive writers for tests: they write what an attacker can, not only what `zip` and `tar` would
 * (names with `../`, entries that lie about their size, entries sharing their data).
 */

export interface ZipEntryInput {
  name: string;
  data?: Buffer | string;
  /** Deflate (default) or store. */
  method?: 0 | 8;
  /** Unix mode written in the external attributes (e.g. 0o120777 for a symlink). */
  mode?: number;
  /** Overrides of what the central directory declares. */
  declaredSize?: number;
  /** Set the encryption flag. */
  encrypted?: boolean;
  /** Point this entry at the local header of an earlier entry (index) instead of writing its own. */
  sharesDataWith?: number;
}

export function zipArchive(entries: readonly ZipEntryInput[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const offsets: number[] = [];
  const described: { size: number; compressed: number; crc: number; method: number }[] = [];
  let offset = 0;
  for (const [i, entry] of entries.entries()) {
    const name = Buffer.from(entry.name, 'utf8');
    const data = Buffer.from(entry.data ?? '');
    const method = entry.method ?? 8;
    const body = method === 8 ? deflateRawSync(data) : data;
    const crc = crc32(data);
    const flags = 0x800 | (entry.encrypted ? 1 : 0);
    let at = offset;
    if (entry.sharesDataWith !== undefined) {
      at = offsets[entry.sharesDataWith] as number;
      described.push(described[entry.sharesDataWith]!);
    } else {
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(flags, 6);
      local.writeUInt16LE(method, 8);
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(body.length, 18);
      local.writeUInt32LE(data.length, 22);
      local.writeUInt16LE(name.length, 26);
      locals.push(local, name, body);
      offset += local.length + name.length + body.length;
      described.push({ size: data.length, compressed: body.length, crc, method });
    }
    offsets.push(at);
    const d = described[i]!;
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(d.method, 10);
    central.writeUInt32LE(d.crc, 16);
    central.writeUInt32LE(d.compressed, 20);
    central.writeUInt32LE(entry.declaredSize ?? d.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(at, 42);
    centrals.push(central, name);
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

export interface TarEntryInput {
  name: string;
  data?: Buffer | string;
  /** '0' file (default), '2' symlink, '1' hard link, '5' directory, 'x' is written for long names. */
  type?: '0' | '1' | '2' | '5';
  linkName?: string;
}

/** A ustar archive; names over 100 bytes get a pax header, as GNU tar and npm write them. */
export function tarArchive(entries: readonly TarEntryInput[], gzip = true): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from(entry.data ?? '');
    if (Buffer.byteLength(entry.name) > 100) {
      const record = paxRecord('path', entry.name);
      blocks.push(header('PaxHeader', 'x', record.length), pad(record));
    }
    blocks.push(header(entry.name.slice(0, 100), entry.type ?? '0', data.length, entry.linkName));
    blocks.push(pad(data));
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  return gzip ? gzipSync(tar) : tar;
}

function header(name: string, type: string, size: number, linkName = ''): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write(linkName, 157, 100, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function pad(data: Buffer): Buffer {
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(padded);
  return padded;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return Buffer.from(`${length}${body}`, 'utf8');
}
