import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A HashiCorp Vault on loopback that answers only what Vault's HTTP API documents, in Vault's shapes:
 * AppRole and Kubernetes login (`auth.client_token`, `lease_duration`, `renewable`), token renew-self,
 * Transit encrypt/decrypt with a derived key (`context` required, `vault:v1:` ciphertexts), KV v2 reads
 * (`data.data`, `data.metadata`), and its failures: 503 `{"errors":["Vault is sealed"]}`, 403
 * `{"errors":["permission denied"]}` for a token it no longer honours, 429 for a rate-limit quota.
 * A request of any other shape is refused with 400 and recorded in `violations` (contract tests
 * assert there are none).
 */
export interface VaultFake {
  url: string;
  /** Requests that are not what Vault documents (path, method, headers, body members). */
  readonly violations: string[];
  /** Every request's method and path, for asserting what the client called. */
  readonly calls: string[];
  seal(): void;
  unseal(): void;
  /** The next `count` requests get 429 (a rate-limit quota) with Retry-After. */
  throttle(count: number): void;
  /** Every token issued so far stops being honoured (its lease ended): 403 permission denied. */
  expireTokens(): void;
  /** Renew-self is refused from now on (the token reached its max TTL): the client must log in again. */
  refuseRenewals(): void;
  /** Transit calls get 403 whatever the token (the policy no longer allows them). */
  denyTransit(): void;
  writeKv(mount: string, path: string, data: Record<string, string>): void;
  close(): Promise<void>;
}

export interface VaultFakeOptions {
  approle?: { roleId: string; secretId: string };
  kubernetes?: { role: string; jwt: string };
  transitKey?: string;
  /** Seconds of each token's lease. */
  tokenTtlSeconds?: number;
}

export async function startVaultFake(options: VaultFakeOptions = {}): Promise<VaultFake> {
  const transitKey = options.transitKey ?? 'gatehouse';
  const ttl = options.tokenTtlSeconds ?? 3600;
  const keyMaterial = randomBytes(32);
  const tokens = new Set<string>();
  const kv = new Map<string, Record<string, string>>();
  const violations: string[] = [];
  const calls: string[] = [];
  const state = { sealed: false, throttled: 0, renewals: true, transit: true };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
  const violation = (res: ServerResponse, what: string) => {
    violations.push(what);
    send(res, 400, { errors: [`fake vault: ${what}`] });
  };
  const authResponse = (metadata: Record<string, string>) => {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    tokens.add(token);
    return {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: null,
      warnings: null,
      auth: {
        client_token: token,
        accessor: randomBytes(12).toString('base64url'),
        policies: ['default', 'gatehouse'],
        token_policies: ['default', 'gatehouse'],
        metadata,
        lease_duration: ttl,
        renewable: true,
        entity_id: randomUUID(),
        token_type: 'service',
        orphan: true,
      },
    };
  };
  const derived = (context: Buffer) => createHmac('sha256', keyMaterial).update(context).digest();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://vault');
    const path = url.pathname;
    calls.push(`${req.method} ${path}`);
    const raw = await readBody(req);
    if (state.sealed) return send(res, 503, { errors: ['Vault is sealed'] });
    if (state.throttled > 0) {
      state.throttled -= 1;
      return send(
        res,
        429,
        { errors: [`request path "${path.slice(4)}": rate limit quota exceeded`] },
        { 'retry-after': '2' },
      );
    }
    if (!path.startsWith('/v1/')) return violation(res, `path ${path} is not under /v1/`);
    let body: Record<string, unknown> = {};
    if (req.method === 'POST') {
      if (!/^application\/json/.test(req.headers['content-type'] ?? '')) {
        return violation(res, `POST ${path} without Content-Type: application/json`);
      }
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return violation(res, `POST ${path} with a body that is not JSON`);
      }
    }
    const onlyMembers = (allowed: string[]) => {
      const extra = Object.keys(body).filter((k) => !allowed.includes(k));
      return extra.length === 0 ? undefined : `${path} with unknown members ${extra.join(', ')}`;
    };
    const token = req.headers['x-vault-token'];
    const authorised = typeof token === 'string' && tokens.has(token);

    if (req.method === 'POST' && path === '/v1/auth/approle/login') {
      const extra = onlyMembers(['role_id', 'secret_id']);
      if (extra) return violation(res, extra);
      const expected = options.approle;
      if (!expected || body.role_id !== expected.roleId || body.secret_id !== expected.secretId) {
        return send(res, 400, { errors: ['invalid role or secret ID'] });
      }
      return send(res, 200, authResponse({ role_name: 'gatehouse' }));
    }
    if (req.method === 'POST' && path === '/v1/auth/kubernetes/login') {
      const extra = onlyMembers(['role', 'jwt']);
      if (extra) return violation(res, extra);
      const expected = options.kubernetes;
      if (!expected || body.role !== expected.role || body.jwt !== expected.jwt) {
        return send(res, 403, { errors: ['permission denied'] });
      }
      return send(res, 200, authResponse({ role: expected.role, service_account_name: 'gatehouse' }));
    }
    if (req.method === 'POST' && path === '/v1/auth/token/renew-self') {
      const extra = onlyMembers(['increment']);
      if (extra) return violation(res, extra);
      if (!authorised || !state.renewals) return send(res, 403, { errors: ['permission denied'] });
      const answer = authResponse({});
      tokens.delete(answer.auth.client_token);
      return send(res, 200, { ...answer, auth: { ...answer.auth, client_token: token } });
    }
    const transit = /^\/v1\/transit\/(encrypt|decrypt)\/([^/]+)$/.exec(path);
    if (req.method === 'POST' && transit) {
      const [, operation, name] = transit;
      const extra = onlyMembers(
        operation === 'encrypt' ? ['plaintext', 'context'] : ['ciphertext', 'context'],
      );
      if (extra) return violation(res, extra);
      if (!authorised || !state.transit) return send(res, 403, { errors: ['permission denied'] });
      if (name !== transitKey) return send(res, 400, { errors: ['encryption key not found'] });
      if (typeof body.context !== 'string' || !isBase64(body.context)) {
        return send(res, 400, {
          errors: ["missing 'context' for key derivation; the key was created using a derived key"],
        });
      }
      const key = derived(Buffer.from(body.context, 'base64'));
      if (operation === 'encrypt') {
        if (typeof body.plaintext !== 'string' || !isBase64(body.plaintext)) {
          return violation(res, 'transit encrypt without a base64 plaintext');
        }
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        const sealed = Buffer.concat([cipher.update(Buffer.from(body.plaintext, 'base64')), cipher.final()]);
        const ciphertext = `vault:v1:${Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64')}`;
        return send(res, 200, { request_id: randomUUID(), data: { ciphertext, key_version: 1 } });
      }
      if (typeof body.ciphertext !== 'string' || !body.ciphertext.startsWith('vault:v1:')) {
        return send(res, 400, { errors: ['invalid ciphertext: no prefix'] });
      }
      try {
        const raw = Buffer.from(body.ciphertext.slice('vault:v1:'.length), 'base64');
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
        return send(res, 200, { request_id: randomUUID(), data: { plaintext: plain.toString('base64') } });
      } catch {
        return send(res, 400, { errors: ['cipher: message authentication failed'] });
      }
    }
    const kvRead = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(path);
    if (req.method === 'GET' && kvRead) {
      if (!authorised) return send(res, 403, { errors: ['permission denied'] });
      const data = kv.get(`${kvRead[1]}/${kvRead[2]}`);
      if (!data) return send(res, 404, { errors: [] });
      return send(res, 200, {
        request_id: randomUUID(),
        data: {
          data,
          metadata: {
            created_time: new Date().toISOString(),
            deletion_time: '',
            destroyed: false,
            version: 1,
          },
        },
      });
    }
    return violation(res, `${req.method} ${path} is not an endpoint this client should call`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { errors: [String(error)] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    violations,
    calls,
    seal: () => void (state.sealed = true),
    unseal: () => void (state.sealed = false),
    throttle: (count) => void (state.throttled = count),
    expireTokens: () => tokens.clear(),
    refuseRenewals: () => void (state.renewals = false),
    denyTransit: () => void (state.transit = false),
    writeKv: (mount, path, data) => void kv.set(`${mount}/${path}`, data),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function isBase64(value: string): boolean {
  return /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
