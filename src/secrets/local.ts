import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, KeyServiceUnavailable } from '../errors/index.js';
import {
  createLocalKeyService,
  loadMasterKey,
  openWithKey,
  readOrCreate,
  sealWithKey,
  type KeyService,
} from './key-service.js';

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
 * by the key service (by default the master key in `master.key`, mode 0600, or GATEHOUSE_MASTER_KEY).
 * Files are created exclusively, so two processes that create the same key at first start agree on one.
 */
export function openLocalSecretStore(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
  keyService?: KeyService,
): SecretStore {
  const dir = join(dataDir, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = keyService ?? defaultKeyService(dataDir, env);
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
      return openEnvelope(keys, parseEnvelope(text, name, fileOf(name)), name, fileOf(name));
    },
    async putIfAbsent(name, value) {
      const file = fileOf(name);
      const sealed = await sealEnvelope(keys, value, name);
      const stored = readOrCreate(file, () => Buffer.from(JSON.stringify(sealed)));
      return openEnvelope(keys, parseEnvelope(stored.toString('utf8'), name, file), name, file);
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

function defaultKeyService(dataDir: string, env: NodeJS.ProcessEnv): KeyService {
  const { key, source } = loadMasterKey(join(dataDir, 'master.key'), env.GATEHOUSE_MASTER_KEY);
  return createLocalKeyService(key, source);
}

/** Seals and opens one secret's envelope (its JSON text) through the key service. */
export interface EnvelopeKeeper {
  seal(name: string, value: Uint8Array): Promise<string>;
  /** `where` names the envelope's place (a file, the database) in what an operator is told. */
  open(name: string, text: string, where: string): Promise<Uint8Array>;
}

/** Envelopes whose data keys the key service wraps (local master key, Vault or KMS). */
export function keyServiceEnvelopes(keys: KeyService): EnvelopeKeeper {
  return {
    seal: async (name, value) => JSON.stringify(await sealEnvelope(keys, value, name)),
    open: (name, text, where) => openEnvelope(keys, parseEnvelope(text, name, where), name, where),
  };
}

interface Envelope {
  v: 1;
  /** The data key, wrapped by the key service (locally: iv ‖ tag ‖ ciphertext under the master key, base64). */
  key: string;
  /** The secret, encrypted under the data key: iv ‖ tag ‖ ciphertext, base64. */
  data: string;
}

async function sealEnvelope(keys: KeyService, value: Uint8Array, name: string): Promise<Envelope> {
  const dataKey = randomBytes(32);
  return { v: 1, key: await keys.wrap(dataKey, name), data: sealWithKey(dataKey, value, name) };
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
    throw new ConfigError(`secrets: the secret ${name} in ${file} is damaged (not JSON); ${repair}`, {
      cause,
    });
  }
  const { v, key, data } = (parsed ?? {}) as Partial<Envelope>;
  if (v !== 1 || typeof key !== 'string' || typeof data !== 'string') {
    throw new ConfigError(
      `secrets: the secret ${name} in ${file} is damaged (not a key envelope); ${repair}`,
    );
  }
  return { v, key, data };
}

async function openEnvelope(
  keys: KeyService,
  envelope: Envelope,
  name: string,
  file: string,
): Promise<Uint8Array> {
  try {
    const dataKey = Buffer.from(await keys.unwrap(envelope.key, name));
    return openWithKey(dataKey, envelope.data, name);
  } catch (cause) {
    // A key service that cannot answer now says nothing about the file: 503, not "damaged".
    if (cause instanceof KeyServiceUnavailable) throw cause;
    throw new ConfigError(
      `secrets: the secret ${name} in ${file} cannot be decrypted with this data dir's master key ` +
        `(a different master key, or the file is damaged); use the master key it was made with, or ${repair}`,
      { cause },
    );
  }
}
