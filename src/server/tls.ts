/**
 * HTTPS on the listener: TLS 1.2 minimum, forward-secret AEAD suites only, and the certificate files
 * read again whenever they change (setSecureContext: new connections get the new certificate, open
 * ones keep theirs), so a renewed certificate needs no restart.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { ConfigError } from '../errors/index.js';

export type TlsFiles = { cert: string; key: string } | { pfx: string; passphrase?: string };

/** TLS 1.2 suites with ECDHE and AEAD (Mozilla "intermediate"); TLS 1.3 suites are all modern. */
const tls12Ciphers = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Sent on every HTTPS answer: browsers keep to HTTPS for a year. */
export const hstsHeader = 'max-age=31536000; includeSubDomains';

/** The secure context options from the files; ConfigError naming the file that cannot be read. */
export function tlsContextOptions(files: TlsFiles): SecureContextOptions {
  const read = (path: string) => {
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new ConfigError(`server.tls: cannot read ${path}`, { cause });
    }
  };
  const material =
    'pfx' in files
      ? { pfx: read(files.pfx), ...(files.passphrase !== undefined && { passphrase: files.passphrase }) }
      : { cert: read(files.cert), key: read(files.key) };
  return { ...material, minVersion: 'TLSv1.2', ciphers: tls12Ciphers, honorCipherOrder: true };
}

/**
 * Watches the files' directories (renewal tools replace files by rename, which a watch on the file
 * itself misses) and installs the new context; a pair that does not load keeps the old one in force.
 */
export function reloadTlsOnChange(
  server: TlsServer,
  files: TlsFiles,
  onReload: (error?: unknown) => void,
): () => void {
  const paths = ('pfx' in files ? [files.pfx] : [files.cert, files.key]).map((path) => resolve(path));
  const names = new Set(paths.map((path) => basename(path)));
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    timer = undefined;
    try {
      server.setSecureContext(tlsContextOptions(files));
      onReload();
    } catch (error) {
      onReload(error);
    }
  };
  const watchers: FSWatcher[] = [...new Set(paths.map((path) => dirname(path)))].map((dir) =>
    watch(dir, (_event, name) => {
      if (name !== null && !names.has(name.toString())) return;
      // A certificate and its key are written one after the other: load once both have landed.
      clearTimeout(timer);
      timer = setTimeout(reload, 200);
    }),
  );
  for (const watcher of watchers) watcher.unref();
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
