import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { BundleInvalid, scanBundle, scanSummary, type ScanSummary } from '../scan/index.js';

/** A scan Gatehouse made itself, bound to the digest of the bundle it read. */
export interface BundleScan {
  /** `sha256:` and the hex SHA-256 of the archive's bytes (of a folder: of its sorted file list). */
  readonly digest: string;
  readonly summary: ScanSummary;
}

/** The media types an uploaded bundle may have, and the file name the scanner recognises each by. */
export const bundleMediaTypes: Readonly<Record<string, string>> = Object.freeze({
  'application/zip': 'bundle.zip',
  'application/gzip': 'bundle.tgz',
  'application/x-gzip': 'bundle.tgz',
});

/** Uploads larger than this are refused before they are read (413). */
export const maxBundleBytes = 64 * 1024 * 1024;

/** Scans a bundle on disk (folder, .zip, .tgz) and binds the result to its digest. */
export async function scanBundleAt(path: string): Promise<BundleScan> {
  const digest = await bundleDigest(path);
  return { digest, summary: scanSummary(await scanBundle(path)) };
}

/**
 * Scans uploaded bundle bytes: written to a private temporary file the scanner reads (it tells the
 * format by the name), removed afterwards whatever happened.
 */
export async function scanUploadedBundle(bytes: Buffer, mediaType: string): Promise<BundleScan> {
  const name = bundleMediaTypes[mediaType];
  if (name === undefined) {
    throw new BundleInvalid(`send the bundle as ${Object.keys(bundleMediaTypes).join(' or ')}`);
  }
  const folder = await mkdtemp(join(tmpdir(), 'gatehouse-bundle-'));
  try {
    const file = join(folder, name);
    await writeFile(file, bytes, { mode: 0o600 });
    return await scanBundleAt(file);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * `sha256:` digest of a bundle: of an archive's bytes, or of a folder's `<sha256>  <path>` lines sorted
 * by path (as `sha256sum` prints them), so the same tree gives the same digest on any machine.
 */
export async function bundleDigest(path: string): Promise<string> {
  const info = await stat(path).catch((cause: unknown) => {
    throw new BundleInvalid(`${path} cannot be read`, { cause });
  });
  if (!info.isDirectory()) return `sha256:${await fileSha256(path)}`;
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const lines: string[] = [];
  for (const file of files) {
    const name = relative(path, file).split(sep).join('/');
    lines.push(
      `${createHash('sha256')
        .update(await readFile(file))
        .digest('hex')}  ${name}\n`,
    );
  }
  return `sha256:${createHash('sha256').update(lines.join('')).digest('hex')}`;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
