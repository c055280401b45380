import { constants, createReadStream } from 'node:fs';
import { lstat, open, opendir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { BundleEntry, EntryType, OpenBundle } from './entries.js';
import { BundleInvalid } from './errors.js';
import { readTar } from './tar.js';
import type { BundleKind, ScanLimits } from './types.js';
import { readZip } from './zip.js';

/**
 * Opens a bundle by what it is, not by its name: a folder, or a file that starts like a zip, a gzip
 * stream (a .tgz from `npm pack` or `tar czf`) or a plain tar. Nothing is ever extracted to disk.
 */

const MiB = 1024 * 1024;

/** Folders of installed dependencies and version control: not the app's own code. */
const skippedFolders: ReadonlySet<string> = new Set(['node_modules', '.git', '.hg', '.svn']);

/** The skipped folder an entry lies in (`web/node_modules`), if any. */
export function skippedFolderOf(path: string): string | undefined {
  const segments = path.split('/');
  const i = segments.findIndex((segment) => skippedFolders.has(segment));
  return i < 0 ? undefined : segments.slice(0, i + 1).join('/');
}

export async function openBundle(
  path: string,
  limits: ScanLimits,
): Promise<{ kind: BundleKind; bundle: OpenBundle; skipped: string[] }> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new BundleInvalid(`cannot read ${path}: no such file or folder, or no permission`, { cause });
  }
  if (info.isDirectory()) {
    const skipped: string[] = [];
    return { kind: 'folder', bundle: await openFolder(path, limits, skipped), skipped };
  }
  if (!info.isFile()) throw new BundleInvalid(`${path} is neither a folder nor a file`);

  const file = await open(path, 'r').catch((cause: unknown) => {
    throw new BundleInvalid(`cannot read ${path}: no permission`, { cause });
  });
  try {
    const head = Buffer.alloc(Math.min(info.size, 512));
    await file.read(head, 0, head.length, 0);
    if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return zip(file, info.size, limits);
    // An empty zip is only its end-of-directory record.
    if (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50) return zip(file, info.size, limits);
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      await file.close();
      return { kind: 'tgz', bundle: openTarStream(path, info.size, limits, true), skipped: [] };
    }
    if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') {
      await file.close();
      return { kind: 'tar', bundle: openTarStream(path, info.size, limits, false), skipped: [] };
    }
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
  await file.close();
  throw new BundleInvalid(`${path} is not a folder, a .zip or a .tgz/.tar.gz bundle`);
}

function zip(file: FileHandle, size: number, limits: ScanLimits) {
  const bundle: OpenBundle = {
    total: size,
    entries: () => readZip(file, size, limits),
    close: () => file.close(),
  };
  return { kind: 'zip' as const, bundle, skipped: [] };
}

function openTarStream(path: string, size: number, limits: ScanLimits, gzipped: boolean): OpenBundle {
  let read = 0;
  const source = createReadStream(path);
  source.on('data', (chunk) => (read += chunk.length));
  const stream = gzipped ? source.pipe(createGunzip()) : source;
  if (gzipped) source.on('error', (error) => stream.destroy(error));

  async function* chunks(): AsyncGenerator<Buffer> {
    let out = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        out += chunk.length;
        if (out > limits.maxTotalBytes) {
          throw new BundleInvalid(
            `the bundle expands to more than ${Math.floor(limits.maxTotalBytes / MiB)} MiB (a decompression bomb or not a microapp bundle)`,
          );
        }
        if (out > 8 * MiB && out > limits.maxRatio * Math.max(read, 1)) {
          throw new BundleInvalid(
            `the bundle expands more than ${limits.maxRatio} times (a decompression bomb)`,
          );
        }
        yield chunk;
      }
    } catch (error) {
      if (error instanceof BundleInvalid) throw error;
      throw new BundleInvalid(`${gzipped ? 'corrupt gzip stream' : 'cannot read the tar'}`, { cause: error });
    }
  }

  return {
    total: size,
    entries: () => readTar(chunks(), limits, () => read),
    async close() {
      stream.destroy();
      source.destroy();
    },
  };
}

interface Listed {
  readonly relative: string;
  readonly full: string;
  readonly type: EntryType;
  readonly size: number;
}

/**
 * A folder is listed first (lstat only: links are reported, never followed), so that progress has a
 * total and the limits are checked before any file is read.
 */
async function openFolder(root: string, limits: ScanLimits, skipped: string[]): Promise<OpenBundle> {
  const listed: Listed[] = [];
  let total = 0;
  const pending = [''];
  while (pending.length > 0) {
    const relativeDir = pending.pop() as string;
    const names: string[] = [];
    try {
      for await (const entry of await opendir(join(root, relativeDir))) names.push(entry.name);
    } catch (cause) {
      throw new BundleInvalid(`cannot list ${relativeDir || root}: no permission, or it changed`, { cause });
    }
    for (const name of names) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name;
      const full = join(root, relative);
      const info = await lstat(full).catch((cause: unknown) => {
        throw new BundleInvalid(`cannot read ${relative}: no permission, or it changed`, { cause });
      });
      if (info.isDirectory()) {
        if (skippedFolders.has(name)) skipped.push(relative);
        else pending.push(relative);
        continue;
      }
      const type: EntryType = info.isFile() ? 'file' : info.isSymbolicLink() ? 'symlink' : 'other';
      listed.push({ relative, full, type, size: type === 'file' ? info.size : 0 });
      if (listed.length > limits.maxEntries) {
        throw new BundleInvalid(`the folder holds more than the limit of ${limits.maxEntries} files`);
      }
      total += type === 'file' ? info.size : 0;
      if (total > limits.maxTotalBytes) {
        throw new BundleInvalid(
          `the folder holds more than ${Math.floor(limits.maxTotalBytes / MiB)} MiB: is it a microapp bundle?`,
        );
      }
    }
  }
  listed.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
  skipped.sort();

  async function* entries(): AsyncGenerator<BundleEntry> {
    let consumed = 0;
    for (const item of listed) {
      yield {
        name: item.relative,
        type: item.type,
        size: item.size,
        consumed,
        read: () => readListed(item, limits),
      };
      consumed += item.size;
    }
  }
  return { total, entries, close: async () => undefined };
}

/** O_NOFOLLOW: a file swapped for a link after it was listed is not read through the link. */
async function readListed(item: Listed, limits: ScanLimits): Promise<Buffer> {
  const file = await open(item.full, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0)).catch((cause) => {
    throw new BundleInvalid(`cannot read ${item.relative}: it changed or vanished during the scan`, {
      cause,
    });
  });
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new BundleInvalid(`${item.relative} changed during the scan`);
    const length = Math.min(info.size, limits.maxFileBytes);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await file.read(buffer, read, length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read);
  } finally {
    await file.close();
  }
}
