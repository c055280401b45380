import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigError } from '../errors/index.js';

/**
 * Wraps and unwraps data keys. `context` is the secret's name, bound to the wrapped key as associated
 * data (Transit's derivation context, KMS's EncryptionContext), so a wrapped key moved to another name
 * does not open. A backend that cannot answer throws KeyServiceUnavailable; one that answers "this does
 * not open" throws any other error.
 */
export interface KeyService {
  readonly kind: 'local' | 'vault' | 'kms';
  wrap(dataKey: Uint8Array, context: string): Promise<string>;
  unwrap(wrapped: string, context: string): Promise<Uint8Array>;
  /** A round trip through the backend, for start and /readyz: a detail naming it, or a throw saying why not. */
  check(): Promise<string>;
  close(): void;
}

/** The name every start-up and readiness probe wraps under; no stored secret has it (names have no `:`). */
export const probeContext = 'gatehouse:probe';

/** A wrap and an unwrap of a fresh key: proves the backend can do both, now. */
export async function roundTrip(keys: Pick<KeyService, 'wrap' | 'unwrap'>): Promise<void> {
  const key = randomBytes(32);
  const back = await keys.unwrap(await keys.wrap(key, probeContext), probeContext);
  if (!key.equals(Buffer.from(back)))
    throw new Error('the key service unwrapped another key than it wrapped');
}

/** The embedded backend: AES-256-GCM under a 32-byte master key held by this process. */
export function createLocalKeyService(masterKey: Buffer, source: string): KeyService {
  return {
    kind: 'local',
    async wrap(dataKey, context) {
      return sealWithKey(masterKey, dataKey, context);
    },
    async unwrap(wrapped, context) {
      return openWithKey(masterKey, wrapped, context);
    },
    async check() {
      await roundTrip(this);
      return `local master key (${source})`;
    },
    close() {},
  };
}

/**
 * The master key: from GATEHOUSE_MASTER_KEY (base64 of 32 bytes) when set (an orchestrator's secret),
 * else from `file`, created with mode 0600 on first start.
 */
export function loadMasterKey(file: string, fromEnv: string | undefined): { key: Buffer; source: string } {
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) {
      throw new ConfigError('secrets: GATEHOUSE_MASTER_KEY must be the base64 of 32 bytes');
    }
    return { key, source: 'GATEHOUSE_MASTER_KEY' };
  }
  // The first start of a new data dir (or key folder) makes it.
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const key = readOrCreate(file, () => randomBytes(32));
  if (key.length !== 32) throw new ConfigError(`secrets: ${file} is not a 32-byte key`);
  return { key, source: file };
}

/** Where the local master key file is: the configured one, or `master.key` in the data dir. */
export function masterKeyFile(dataDir: string, configured: string | undefined): string {
  return configured ?? join(dataDir, 'master.key');
}

/**
 * The start-up warning for a master key kept beside the data it protects: whoever copies the data dir
 * (a backup, a snapshot) has the key too. Undefined when the key comes from elsewhere.
 */
export function masterKeyBesideData(dataDir: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const inside = relative(resolve(dataDir), resolve(file));
  if (inside.startsWith('..') || isAbsolute(inside)) return undefined;
  return (
    `secrets: the master key ${file} sits inside the data dir, so a copy of the data holds its key; ` +
    'set secrets.keyService.masterKeyFile outside it, GATEHOUSE_MASTER_KEY, or use Vault or KMS'
  );
}

// The context is the additional authenticated data, so a ciphertext cannot be moved to another name.
export function sealWithKey(key: Buffer, plaintext: Uint8Array, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function openWithKey(key: Buffer, sealed: string, context: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(Buffer.from(context));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}

// Written to a temporary file and hard-linked into place: the link fails if another process won, and a
// reader never sees a half-written file.
export function readOrCreate(file: string, create: () => Buffer): Buffer {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, create(), { mode: 0o600 });
  try {
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
  return readFileSync(file);
}
