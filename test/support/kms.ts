import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * AWS KMS on loopback, as its API reference documents it: `POST /` with the JSON 1.1 protocol
 * (`Content-Type: application/x-amz-json-1.1`, `X-Amz-Target: TrentService.Encrypt|Decrypt`), every
 * request checked against its Signature Version 4 (computed here independently of the client's
 * library), EncryptionContext bound as associated data, and errors as `400 {"__type": "...",
 * "message": "..."}` (ThrottlingException, DisabledException, AccessDeniedException,
 * InvalidCiphertextException, InvalidSignatureException, UnrecognizedClientException).
 */
export interface KmsFake {
  url: string;
  readonly keyArn: string;
  readonly violations: string[];
  readonly calls: string[];
  /** The next requests get this error type until `recover()`. */
  fail(
    type: 'ThrottlingException' | 'DisabledException' | 'AccessDeniedException' | 'KMSInternalException',
  ): void;
  recover(): void;
  close(): Promise<void>;
}

export const kmsTestCredentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};

export async function startKmsFake(options: { region?: string; keyId?: string } = {}): Promise<KmsFake> {
  const region = options.region ?? 'eu-west-1';
  const keyId = options.keyId ?? '1234abcd-12ab-34cd-56ef-1234567890ab';
  const keyArn = `arn:aws:kms:${region}:111122223333:key/${keyId}`;
  const material = randomBytes(32);
  const violations: string[] = [];
  const calls: string[] = [];
  let failing: string | undefined;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, type: string, message: string) =>
    send(res, type === 'KMSInternalException' ? 500 : 400, { __type: type, message });
  const violation = (res: ServerResponse, what: string) => {
    violations.push(what);
    error(res, 'ValidationException', `fake kms: ${what}`);
  };
  const aad = (context: unknown) =>
    Buffer.from(
      JSON.stringify(
        Object.entries((context ?? {}) as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : 1)),
      ),
    );

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    calls.push(target);
    if (req.method !== 'POST' || req.url !== '/')
      return violation(res, `${req.method} ${req.url} is not POST /`);
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
      return violation(res, 'Content-Type is not application/x-amz-json-1.1');
    }
    const signature = checkSignature(req, raw, region);
    if (signature) return error(res, signature.type, signature.message);
    if (failing) return error(res, failing, `fake kms: ${failing}`);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return error(res, 'SerializationException', 'body is not JSON');
    }
    const allowed =
      target === 'TrentService.Encrypt'
        ? ['KeyId', 'Plaintext', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm']
        : target === 'TrentService.Decrypt'
          ? ['CiphertextBlob', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm']
          : undefined;
    if (!allowed) return violation(res, `X-Amz-Target ${target} is not Encrypt or Decrypt`);
    const extra = Object.keys(body).filter((k) => !allowed.includes(k));
    if (extra.length > 0) return violation(res, `${target} with unknown members ${extra.join(', ')}`);
    if (body.KeyId !== undefined && body.KeyId !== keyId && body.KeyId !== keyArn) {
      return error(res, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`);
    }
    if (target === 'TrentService.Encrypt') {
      if (body.KeyId === undefined) return violation(res, 'Encrypt without KeyId');
      if (typeof body.Plaintext !== 'string') return violation(res, 'Encrypt without a base64 Plaintext');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', material, iv).setAAD(aad(body.EncryptionContext));
      const sealed = Buffer.concat([cipher.update(Buffer.from(body.Plaintext, 'base64')), cipher.final()]);
      return send(res, 200, {
        CiphertextBlob: Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyId: keyArn,
      });
    }
    if (typeof body.CiphertextBlob !== 'string')
      return violation(res, 'Decrypt without a base64 CiphertextBlob');
    try {
      const blob = Buffer.from(body.CiphertextBlob, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', material, blob.subarray(0, 12)).setAAD(
        aad(body.EncryptionContext),
      );
      decipher.setAuthTag(blob.subarray(12, 28));
      const plain = Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
      return send(res, 200, {
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyId: keyArn,
        Plaintext: plain.toString('base64'),
      });
    } catch {
      return error(res, 'InvalidCiphertextException', '');
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) =>
      send(res, 500, { __type: 'KMSInternalException', message: String(e) }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    keyArn,
    violations,
    calls,
    fail: (type) => void (failing = type),
    recover: () => void (failing = undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** SigV4 as AWS documents it: canonical request, string to sign, the derived signing key. */
function checkSignature(
  req: IncomingMessage,
  body: string,
  region: string,
): { type: string; message: string } | undefined {
  const authorization = String(req.headers.authorization ?? '');
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!match) return { type: 'IncompleteSignatureException', message: 'Authorization header is not SigV4' };
  const [, accessKey, date, signedRegion, signedHeaders, signature] = match as unknown as string[];
  if (accessKey !== kmsTestCredentials.accessKeyId) {
    return {
      type: 'UnrecognizedClientException',
      message: 'The security token included in the request is invalid.',
    };
  }
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const names = signedHeaders!.split(';');
  if (
    signedRegion !== region ||
    !amzDate.startsWith(date!) ||
    !['host', 'x-amz-date', 'x-amz-target'].every((h) => names.includes(h))
  ) {
    return { type: 'InvalidSignatureException', message: 'Credential scope or signed headers are wrong' };
  }
  const canonicalHeaders = names
    .map(
      (name) =>
        `${name}:${String(req.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = ['POST', '/', '', canonicalHeaders, signedHeaders, sha256(body)].join('\n');
  const scope = `${date}/${region}/kms/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = ['aws4_request'].reduce(
    (k, part) => hmac(k, part),
    hmac(hmac(hmac(`AWS4${kmsTestCredentials.secretAccessKey}`, date!), region), 'kms'),
  );
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  if (!timingSafeEqual(expected, Buffer.from(signature!, 'hex'))) {
    return {
      type: 'InvalidSignatureException',
      message: 'The request signature we calculated does not match the signature you provided.',
    };
  }
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
