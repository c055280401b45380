import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/index.js';

/** A vault: named binary secrets. The embedded store keeps them encrypted in the data directory. */
export interface SecretStore {
  get(name: string): Promise<Uint8Array | undefined>;
  /** Stores `value` unless `name` already exists; answers what is stored afterwards (first writer wins). */
  putIfAbsent(name: string, value: Uint8Array): Promise<Uint8Array>;
  delete(name: string): Promise<void>;
  /** Names of the stored secrets that start with `prefix` (offboarding removes an app's or a user's). */
  list(prefix: string): Promise<string[]>;
}

export const namePattern = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;

/**
 * Local store with AES-256-GCM envelope encryption: each secret has its own random data key, wrapped
 * by the master key in `master.key` (mode 0600). Files are created exclusively, so two processes that
 * create the same key at first start agree on one.
 */
export function openLocalSecretStore(dataDir: string, env: NodeJS.ProcessEnv = process.env): SecretStore {
  const dir = join(dataDir, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const masterKey = loadMasterKey(dataDir, env.GATEHOUSE_MASTER_KEY);
  const fileOf = (name: string) => {
    if (!namePattern.test(name)) throw new TypeError(`invalid secret name ${JSON.stringify(name)}`);
    return join(dir, `${name.replaceAll('/', '__')}.json`);
  };

  return {
    async get(name) {
      let text: string;
      try {
        text = readFileSync(fileOf(name), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      return openEnvelope(masterKey, parseEnvelope(text, name, fileOf(name)), name, fileOf(name));
    },
    async putIfAbsent(name, value) {
      const file = fileOf(name);
      const stored = readOrCreate(file, () =>
        Buffer.from(JSON.stringify(sealEnvelope(masterKey, value, name))),
      );
      return openEnvelope(masterKey, parseEnvelope(stored.toString('utf8'), name, file), name, file);
    },
    async delete(name) {
      rmSync(fileOf(name), { force: true });
    },
    async list(prefix) {
      // A file is named after its secret with `/` written as `__` (fileOf).
      return readdirSync(dir)
        .filter((file) => file.endsWith('.json'))
        .map((file) => file.slice(0, -'.json'.length).replaceAll('__', '/'))
        .filter((name) => namePattern.test(name) && name.startsWith(prefix))
        .sort();
    },
  };
}

/** Seals and opens one secret's envelope (its JSON text) under a master key. */
export interface EnvelopeKeeper {
  seal(name: string, value: Uint8Array): string;
  /** `where` names the envelope's place (a file, the database) in what an operator is told. */
  open(name: string, text: string, where: string): Uint8Array;
}

/** Envelopes under this data dir's master key (GATEHOUSE_MASTER_KEY, else `master.key`). */
export function localEnvelopes(dataDir: string, env: NodeJS.ProcessEnv = process.env): EnvelopeKeeper {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const masterKey = loadMasterKey(dataDir, env.GATEHOUSE_MASTER_KEY);
  return {
    seal: (name, value) => JSON.stringify(sealEnvelope(masterKey, value, name)),
    open: (name, text, where) => openEnvelope(masterKey, parseEnvelope(text, name, where), name, where),
  };
}

/**
 * The master key: from GATEHOUSE_MASTER_KEY (base64 of 32 bytes) when set, so it can live outside the
 * data dir (an orchestrator's secret), else from `master.key`, created with mode 0600 on first start.
 */
function loadMasterKey(dataDir: string, fromEnv: string | undefined): Buffer {
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) {
      throw new GatehouseError(
        'CONFIG_INVALID',
        'secrets: GATEHOUSE_MASTER_KEY must be the base64 of 32 bytes',
      );
    }
    return key;
  }
  const file = join(dataDir, 'master.key');
  const key = readOrCreate(file, () => randomBytes(32));
  if (key.length !== 32) throw new GatehouseError('CONFIG_INVALID', `secrets: ${file} is not a 32-byte key`);
  return key;
}

interface Envelope {
  v: 1;
  /** The data key, encrypted under the master key: iv ‖ tag ‖ ciphertext, base64. */
  key: string;
  /** The secret, encrypted under the data key: iv ‖ tag ‖ ciphertext, base64. */
  data: string;
}

function sealEnvelope(masterKey: Buffer, value: Uint8Array, name: string): Envelope {
  const dataKey = randomBytes(32);
  return { v: 1, key: seal(masterKey, dataKey, name), data: seal(dataKey, value, name) };
}

/** What an operator can do about a damaged secret file. */
const repair =
  'restore it from a backup; without one, move it aside so a new one is created at the next start ' +
  '(a rotation: what the old one signed or encrypted no longer verifies)';

/** The file's envelope; a file that is not one (truncated, zeroed) names the secret, the file and the fix. */
function parseEnvelope(text: string, name: string, file: string): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new GatehouseError(
      'CONFIG_INVALID',
      `secrets: the secret ${name} in ${file} is damaged (not JSON); ${repair}`,
      {
        cause,
      },
    );
  }
  const { v, key, data } = (parsed ?? {}) as Partial<Envelope>;
  if (v !== 1 || typeof key !== 'string' || typeof data !== 'string') {
    throw new GatehouseError(
      'CONFIG_INVALID',
      `secrets: the secret ${name} in ${file} is damaged (not a key envelope); ${repair}`,
    );
  }
  return { v, key, data };
}

function openEnvelope(masterKey: Buffer, envelope: Envelope, name: string, file: string): Uint8Array {
  try {
    const dataKey = open(masterKey, envelope.key, name);
    return open(dataKey, envelope.data, name);
  } catch (cause) {
    throw new GatehouseError(
      'CONFIG_INVALID',
      `secrets: the secret ${name} in ${file} cannot be decrypted with this data dir's master key ` +
        `(a different master key, or the file is damaged); use the master key it was made with, or ${repair}`,
      { cause },
    );
  }
}

// The secret's name is the additional authenticated data, so a ciphertext cannot be moved to another name.
function seal(key: Buffer, plaintext: Uint8Array, name: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(name));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

function open(key: Buffer, sealed: string, name: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(Buffer.from(name));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}

// Written to a temporary file and hard-linked into place: the link fails if another process won, and a
// reader never sees a half-written file.
function readOrCreate(file: string, create: () => Buffer): Buffer {
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
