/**
 * What a file is, by its name: it decides which rules read it. Code gets the strict reading of
 * assignments (a secret must be a quoted literal); configuration and documents the DLP reading.
 */
export type FileKind = 'code' | 'config' | 'doc' | 'lockfile' | 'binary' | 'archive';

const words = (list: string): ReadonlySet<string> => new Set(list.split(/\s+/).filter(Boolean));

const code = words(`js mjs cjs jsx ts mts cts tsx vue svelte astro html htm
  py rb go java kt cs php swift rs sh bash ps1`);
const docs = words('md markdown txt rst adoc');
export const lockfileNames = words(
  'package-lock.json npm-shrinkwrap.json yarn.lock pnpm-lock.yaml bun.lock bun.lockb',
);
const binaries = words(`png jpg jpeg gif webp avif ico bmp tif tiff woff woff2 ttf otf eot
  mp3 mp4 wav ogg webm mov avi pdf wasm exe dll so dylib class pyc node`);
const archives = words('zip tgz gz tar jar war ear 7z rar bz2 xz zst');

export function fileKind(path: string): FileKind {
  const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  if (lockfileNames.has(base)) return 'lockfile';
  const dot = base.lastIndexOf('.');
  const extension = dot > 0 ? base.slice(dot + 1) : '';
  if (code.has(extension)) return 'code';
  if (docs.has(extension) || base === 'license' || base === 'notice') return 'doc';
  if (binaries.has(extension)) return 'binary';
  if (archives.has(extension)) return 'archive';
  return 'config';
}

/** A NUL byte in the first 8 KiB marks binary content, as git decides it too. */
export function looksBinary(data: Buffer): boolean {
  return data.subarray(0, 8192).includes(0);
}
