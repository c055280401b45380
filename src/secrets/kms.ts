import aws4 from 'aws4';
import { ConfigError, KeyServiceUnavailable } from '../errors/index.js';
import { createBackendTransport, retryAfterSeconds, type BackendAnswer } from './http.js';
import { roundTrip, type KeyService } from './key-service.js';

export interface KmsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface KmsOptions {
  region: string;
  keyId: string;
  endpoint?: string;
  timeoutMs: number;
  credentials: KmsCredentials;
}

/** The prefix of a KMS-wrapped key in an envelope, so a key wrapped by another backend is named as such. */
const prefix = 'kms:';

/**
 * Error types that mean "KMS cannot answer this now" (throttled, key disabled or pending deletion,
 * credentials refused, KMS or its key store down): the node refuses (503) rather than guesses.
 * InvalidCiphertextException and IncorrectKeyException are answers: this ciphertext does not open.
 */
const doesNotOpen = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/** The AWS_* environment variables of the SDKs; absent ones are a configuration error at start. */
export function kmsCredentialsFromEnv(env: NodeJS.ProcessEnv): KmsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigError(
      'secrets: secrets.keyService kind kms needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment',
    );
  }
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

/**
 * AWS KMS over its JSON 1.1 protocol (`X-Amz-Target: TrentService.Encrypt`), requests signed with
 * Signature Version 4 (the `aws4` package). The secret's name is the EncryptionContext, which KMS
 * binds to the ciphertext as associated data.
 */
export function createKmsKeyService(options: KmsOptions): KeyService {
  const endpoint = new URL(options.endpoint ?? `https://kms.${options.region}.amazonaws.com/`);
  const transport = createBackendTransport({ timeoutMs: options.timeoutMs });

  async function call(
    operation: 'Encrypt' | 'Decrypt',
    payload: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const body = JSON.stringify(payload);
    const signed = aws4.sign(
      {
        host: endpoint.host,
        path: endpoint.pathname,
        method: 'POST',
        service: 'kms',
        region: options.region,
        headers: {
          'Content-Type': 'application/x-amz-json-1.1',
          'X-Amz-Target': `TrentService.${operation}`,
        },
        body,
      },
      options.credentials,
    );
    let answer: BackendAnswer;
    try {
      answer = await transport.send(endpoint.href, {
        method: 'POST',
        headers: signed.headers as Record<string, string>,
        body,
      });
    } catch (cause) {
      throw new KeyServiceUnavailable(`key service (kms): ${endpoint.host} cannot be reached`, { cause });
    }
    if (answer.status === 200 && answer.body !== null && typeof answer.body === 'object') {
      return answer.body as Record<string, unknown>;
    }
    const { type, message } = kmsError(answer.body);
    if (doesNotOpen.has(type)) throw new Error(`kms ${operation} refused: ${type}`);
    throw new KeyServiceUnavailable(
      `key service (kms): ${operation} failed: ${type || `HTTP ${answer.status}`}${message ? ` (${message})` : ''}`,
      { retryAfterSeconds: retryAfterSeconds(answer.retryAfter, type === 'ThrottlingException' ? 2 : 5) },
    );
  }

  const context = (name: string) => ({ gatehouse_secret: name });

  return {
    kind: 'kms',
    async wrap(dataKey, name) {
      const answer = await call('Encrypt', {
        KeyId: options.keyId,
        Plaintext: Buffer.from(dataKey).toString('base64'),
        EncryptionContext: context(name),
      });
      if (typeof answer.CiphertextBlob !== 'string') {
        throw new KeyServiceUnavailable('key service (kms): Encrypt answered without a CiphertextBlob');
      }
      return `${prefix}${answer.CiphertextBlob}`;
    },
    async unwrap(wrapped, name) {
      if (!wrapped.startsWith(prefix)) {
        throw new Error('this key was not wrapped by KMS (another key service made it)');
      }
      const answer = await call('Decrypt', {
        KeyId: options.keyId,
        CiphertextBlob: wrapped.slice(prefix.length),
        EncryptionContext: context(name),
      });
      if (typeof answer.Plaintext !== 'string') {
        throw new KeyServiceUnavailable('key service (kms): Decrypt answered without a Plaintext');
      }
      return Buffer.from(answer.Plaintext, 'base64');
    },
    async check() {
      await roundTrip(this);
      return `kms ${endpoint.host} key ${options.keyId}`;
    },
    close() {
      transport.close();
    },
  };
}

/** KMS's error body: `__type` (sometimes `com.amazonaws.kms#Name`) and `message` (or `Message`); untrusted, bounded. */
function kmsError(body: unknown): { type: string; message: string } {
  const fields = (body ?? {}) as Record<string, unknown>;
  const rawType = typeof fields.__type === 'string' ? fields.__type : '';
  const type = (rawType.split('#').pop() ?? '').replace(/[^A-Za-z]/g, '').slice(0, 64);
  const raw =
    typeof fields.message === 'string'
      ? fields.message
      : typeof fields.Message === 'string'
        ? fields.Message
        : '';
  return { type, message: raw.slice(0, 200) };
}
