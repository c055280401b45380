import { readFileSync } from 'node:fs';
import { ConfigError, KeyServiceUnavailable } from '../errors/index.js';
import { createBackendTransport, retryAfterSeconds, type BackendAnswer } from './http.js';
import { roundTrip, type KeyService } from './key-service.js';

export type VaultAuth =
  | { approle: { roleId: string; secretIdFile: string; mount: string } }
  | { kubernetes: { role: string; jwtFile: string; mount: string } };

export interface VaultOptions {
  url: string;
  transitMount: string;
  transitKey: string;
  auth: VaultAuth;
  kvMount: string;
  caFile?: string;
  namespace?: string;
  timeoutMs: number;
  now?: () => number;
}

/** Vault as the key service (Transit), and the reader of `vault:` references (KV v2). */
export interface VaultKeyService extends KeyService {
  readonly kind: 'vault';
  /** The field a `vault:<mount>/data/<path>#<field>` reference names; undefined when Vault has no such secret or field. */
  readReference(reference: string): Promise<Uint8Array | undefined>;
}

interface Session {
  token: string;
  /** Renewed (renew-self) from this time on: two thirds into the lease, well before it ends. */
  renewAt: number;
  expiresAt: number;
  renewable: boolean;
}

/** A 403 from Vault: a token it no longer honours, or a policy that does not allow the call. */
class VaultDenied extends Error {}

/**
 * HashiCorp Vault over its HTTP API: logs in with AppRole or Kubernetes auth, renews its token before
 * the lease ends (`auth/token/renew-self`) and logs in again once it cannot; wraps data keys with
 * Transit encrypt/decrypt under a derived key, the secret's name as context; reads KV v2 secrets. An
 * answer that is not one (sealed, throttled, denied, unreachable) is KeyServiceUnavailable.
 */
export function createVaultKeyService(options: VaultOptions): VaultKeyService {
  const now = options.now ?? Date.now;
  const base = options.url.replace(/\/+$/, '');
  const transport = createBackendTransport(options);
  let session: Session | undefined;
  let pending: Promise<Session> | undefined;

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<BackendAnswer> {
    let answer: BackendAnswer;
    try {
      answer = await transport.send(`${base}/v1/${path}`, {
        method,
        headers: {
          ...(token === undefined ? {} : { 'x-vault-token': token }),
          ...(options.namespace === undefined ? {} : { 'x-vault-namespace': options.namespace }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (cause) {
      throw new KeyServiceUnavailable(`key service (vault): ${base} cannot be reached`, { cause });
    }
    if (answer.status === 403) throw new VaultDenied(vaultErrors(answer.body));
    if (answer.status === 429 || answer.status >= 500) {
      // 503 is a sealed Vault or a standby without an active node; 429 a rate-limit quota.
      throw new KeyServiceUnavailable(
        `key service (vault): ${vaultErrors(answer.body) || 'unavailable'} (HTTP ${answer.status})`,
        { retryAfterSeconds: retryAfterSeconds(answer.retryAfter) },
      );
    }
    return answer;
  }

  async function login(): Promise<Session> {
    const [path, body] =
      'approle' in options.auth
        ? [
            `auth/${options.auth.approle.mount}/login`,
            {
              role_id: options.auth.approle.roleId,
              secret_id: readCredential(options.auth.approle.secretIdFile, 'AppRole secret id'),
            },
          ]
        : [
            `auth/${options.auth.kubernetes.mount}/login`,
            {
              role: options.auth.kubernetes.role,
              jwt: readCredential(options.auth.kubernetes.jwtFile, 'Kubernetes service account token'),
            },
          ];
    let answer: BackendAnswer;
    try {
      answer = await call('POST', path, body);
    } catch (error) {
      if (error instanceof VaultDenied) throw refused(`login at ${path} was refused: ${error.message}`);
      throw error;
    }
    if (answer.status !== 200) {
      throw refused(`login at ${path} was refused: ${vaultErrors(answer.body)} (HTTP ${answer.status})`);
    }
    return sessionFrom(answer.body, now());
  }

  async function renew(current: Session): Promise<Session> {
    try {
      const answer = await call('POST', 'auth/token/renew-self', {}, current.token);
      if (answer.status === 200) return sessionFrom(answer.body, now());
    } catch (error) {
      if (!(error instanceof VaultDenied)) throw error;
    }
    // The token cannot be renewed (past its max TTL, revoked): a new login.
    return login();
  }

  async function token(): Promise<string> {
    const at = now();
    if (session && at < session.renewAt) return session.token;
    pending ??= (session && session.renewable && at < session.expiresAt ? renew(session) : login()).finally(
      () => {
        pending = undefined;
      },
    );
    session = await pending;
    return session.token;
  }

  /** A call with the token; a 403 with a token Vault no longer honours is retried once after a new login. */
  async function authorised(method: 'GET' | 'POST', path: string, body?: unknown): Promise<BackendAnswer> {
    try {
      return await call(method, path, body, await token());
    } catch (error) {
      if (!(error instanceof VaultDenied)) throw error;
    }
    session = undefined;
    try {
      return await call(method, path, body, await token());
    } catch (error) {
      if (error instanceof VaultDenied) throw refused(`permission denied for ${path}: ${error.message}`);
      throw error;
    }
  }

  const transit = (operation: 'encrypt' | 'decrypt') =>
    `${options.transitMount}/${operation}/${encodeURIComponent(options.transitKey)}`;

  return {
    kind: 'vault',
    async wrap(dataKey, context) {
      const answer = await authorised('POST', transit('encrypt'), {
        plaintext: Buffer.from(dataKey).toString('base64'),
        context: Buffer.from(context).toString('base64'),
      });
      const ciphertext = dataField(answer, 'ciphertext');
      if (answer.status !== 200 || typeof ciphertext !== 'string' || !/^vault:v\d+:/.test(ciphertext)) {
        throw refused(`transit encrypt answered ${answer.status}: ${vaultErrors(answer.body)}`);
      }
      return ciphertext;
    },
    async unwrap(wrapped, context) {
      if (!/^vault:v\d+:/.test(wrapped)) {
        throw new Error('this key was not wrapped by Vault Transit (another key service made it)');
      }
      const answer = await authorised('POST', transit('decrypt'), {
        ciphertext: wrapped,
        context: Buffer.from(context).toString('base64'),
      });
      const plaintext = dataField(answer, 'plaintext');
      // A 400 is Vault saying this ciphertext does not open under this key and context.
      if (answer.status === 400) throw new Error(`transit decrypt refused: ${vaultErrors(answer.body)}`);
      if (answer.status !== 200 || typeof plaintext !== 'string') {
        throw refused(`transit decrypt answered ${answer.status}: ${vaultErrors(answer.body)}`);
      }
      return Buffer.from(plaintext, 'base64');
    },
    async readReference(reference) {
      const { path, field } = parseReference(reference, options.kvMount);
      const answer = await authorised('GET', path);
      if (answer.status === 404) return undefined;
      const data = dataField(answer, 'data');
      if (answer.status !== 200 || data === null || typeof data !== 'object') {
        throw refused(`reading ${path} answered ${answer.status}: ${vaultErrors(answer.body)}`);
      }
      const value = (data as Record<string, unknown>)[field];
      return typeof value === 'string' ? Buffer.from(value) : undefined;
    },
    async check() {
      await roundTrip(this);
      const renewsIn = session ? Math.max(0, Math.round((session.renewAt - now()) / 1000)) : 0;
      return (
        `vault ${base} transit key ${options.transitKey}` +
        (Number.isFinite(renewsIn) ? ` (token renews in ${renewsIn}s)` : '')
      );
    },
    close() {
      transport.close();
    },
  };
}

/** `vault:kv/data/gatehouse/crm#clientSecret`, or `vault:gatehouse/crm#clientSecret` under the KV mount. */
export function parseReference(reference: string, kvMount: string): { path: string; field: string } {
  const match = /^vault:([A-Za-z0-9._/-]+)#([A-Za-z0-9._-]+)$/.exec(reference);
  if (!match || match[1]!.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new TypeError(`not a Vault reference: ${JSON.stringify(reference)}`);
  }
  const path = match[1]!;
  return { path: /^[^/]+\/data\//.test(path) ? path : `${kvMount}/data/${path}`, field: match[2]! };
}

function refused(detail: string): KeyServiceUnavailable {
  return new KeyServiceUnavailable(`key service (vault): ${detail}`);
}

function readCredential(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (cause) {
    throw new ConfigError(`secrets: the ${what} file ${file} cannot be read`, { cause });
  }
}

/** Vault's `{"errors": [...]}`, joined; untrusted text, so bounded. */
function vaultErrors(body: unknown): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors)) return '';
  return errors
    .filter((e): e is string => typeof e === 'string')
    .join('; ')
    .slice(0, 200);
}

function dataField(answer: BackendAnswer, name: string): unknown {
  const data = (answer.body as { data?: unknown } | undefined)?.data;
  return data !== null && typeof data === 'object' ? (data as Record<string, unknown>)[name] : undefined;
}

/** A login or renewal answer: `auth.client_token`, `auth.lease_duration` seconds (0: no expiry), `auth.renewable`. */
function sessionFrom(body: unknown, at: number): Session {
  const auth = (body as { auth?: Record<string, unknown> } | undefined)?.auth;
  const token = auth?.client_token;
  const lease = auth?.lease_duration;
  if (typeof token !== 'string' || token === '' || typeof lease !== 'number' || !(lease >= 0)) {
    throw refused('the login answer carries no client token');
  }
  if (lease === 0) return { token, renewAt: Infinity, expiresAt: Infinity, renewable: false };
  return {
    token,
    renewAt: at + (lease * 1000 * 2) / 3,
    expiresAt: at + lease * 1000,
    renewable: auth?.renewable === true,
  };
}
