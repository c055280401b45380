import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from './support/demo.js';

// A real Gatehouse listener with server.tls, certificates from a throwaway CA made by openssl here.
let dir: string;
let demo: Demo;
let port: number;
let ca: Buffer;

/** A certificate for 127.0.0.1 signed by the test CA, written to `<name>.crt` / `<name>.key`. */
function issue(name: string): { cert: string; key: string } {
  const [cert, key, csr, ext] = ['crt', 'key', 'csr', 'ext'].map((e) => join(dir, `${name}.${e}`));
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  execFileSync('openssl', ['req', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], {
    stdio: 'ignore',
  });
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      join(dir, 'ca.crt'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** The handshake's outcome: the protocol and the server's certificate, or the error that ended it. */
function handshake(
  options: ConnectionOptions,
): Promise<{ protocol?: string; peer?: PeerCertificate; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: undefined, ...options }, () => {
      resolve({ protocol: socket.getProtocol() ?? undefined, peer: socket.getPeerCertificate() });
      socket.end();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      join(dir, 'ca.crt'),
      '-subj',
      '/CN=Gatehouse test CA',
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(join(dir, 'ca.crt'));
  const served = issue('first');
  demo = await startDemo({ config: { 'server.tls': { cert: served.cert, key: served.key } } });
  port = Number(new URL(demo.url).port);
});

afterAll(async () => {
  await demo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS on the listener (server.tls)', () => {
  it('serves HTTPS with HSTS to a client that trusts the CA', async () => {
    expect(demo.url).toMatch(/^https:\/\//);
    const answer = await new Promise<{ status?: number; hsts?: string | string[] }>((resolve, reject) => {
      request(`${demo.url}/healthz`, { ca }, (response) => {
        response.resume();
        resolve({ status: response.statusCode, hsts: response.headers['strict-transport-security'] });
      })
        .on('error', reject)
        .end();
    });
    expect(answer).toEqual({ status: 200, hsts: 'max-age=31536000; includeSubDomains' });
  });

  it('refuses handshakes below TLS 1.2 and negotiates 1.2 with a forward-secret AEAD suite', async () => {
    const old = await handshake({
      ca,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    expect(old.error).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    const tls12 = await handshake({ ca, maxVersion: 'TLSv1.2' });
    expect(tls12.error).toBeUndefined();
    expect(tls12.protocol).toBe('TLSv1.2');
    const weak = await handshake({
      ca,
      maxVersion: 'TLSv1.2',
      ciphers: 'AES128-SHA:AES256-SHA:AES128-GCM-SHA256',
    });
    expect(weak.error).toMatch(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER|SSLV3_ALERT/);
  });

  it('fails a client that requires a trusted certificate when it does not trust the issuer', async () => {
    const untrusting = await handshake({});
    expect(untrusting.error).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    expect((await handshake({ ca })).error).toBeUndefined();
  });

  it('picks up a renewed certificate written over the files, without a restart', async () => {
    const before = await handshake({ ca });
    expect(before.peer?.subject.CN).toBe('first');
    const renewed = issue('renewed');
    // As renewal tools do: the new files are renamed over the served ones.
    renameSync(renewed.key, join(dir, 'first.key'));
    renameSync(renewed.cert, join(dir, 'first.crt'));
    let after = before;
    for (let i = 0; i < 100 && after.peer?.subject.CN !== 'renewed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await handshake({ ca });
    }
    expect(after.peer?.subject.CN).toBe('renewed');
    expect(after.peer?.fingerprint256).not.toBe(before.peer?.fingerprint256);
  });
});
