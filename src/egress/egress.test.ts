import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEgress, destinationRefusal, parseAllowList } from './index.js';

/** DNS for names under .example.test: every one resolves to `address`. */
function resolvesTo(address: string): LookupFunction {
  return (_hostname, options, callback) => {
    const family = address.includes(':') ? 6 : 4;
    if (options.all) (callback as (e: null, a: unknown) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

let server: Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    hits += 1;
    if (request.url === '/redirect') {
      response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    } else if (request.url === '/large') {
      response.end('x'.repeat(2048));
    } else {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('destinationRefusal', () => {
  const none = parseAllowList([]);
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
  ])('refuses %s', (address) => {
    expect(destinationRefusal(address, none)).toBeDefined();
  });

  it.each(['93.184.215.14', '2606:4700::6810:84e5'])('permits the public address %s', (address) => {
    expect(destinationRefusal(address, none)).toBeUndefined();
  });

  it('permits what the allow-list names, and only that', () => {
    const allow = parseAllowList(['127.0.0.1/32', '10.0.0.0/8', 'fd00::1']);
    expect(destinationRefusal('127.0.0.1', allow)).toBeUndefined();
    expect(destinationRefusal('::ffff:127.0.0.1', allow)).toBeUndefined();
    expect(destinationRefusal('10.9.9.9', allow)).toBeUndefined();
    expect(destinationRefusal('fd00::1', allow)).toBeUndefined();
    expect(destinationRefusal('127.0.0.2', allow)).toBeDefined();
    expect(destinationRefusal('169.254.169.254', allow)).toBeDefined();
  });
});

describe('the guarded egress', () => {
  const post = { method: 'POST' as const, body: '{}', timeoutMs: 5000 };

  it('refuses a name that resolves to loopback when it connects, and reaches it once allow-listed', async () => {
    const refusing = createEgress({ allowPrivateDestinations: [], lookup: resolvesTo('127.0.0.1') });
    const before = hits;
    await expect(refusing.send(`http://hooks.example.test:${port}/hook`, post)).rejects.toMatchObject({
      code: 'DESTINATION_REFUSED',
    });
    await expect(refusing.send(`http://localhost:${port}/hook`, post)).rejects.toMatchObject({
      code: 'DESTINATION_REFUSED',
    });
    expect(hits).toBe(before);
    await refusing.close();

    const allowing = createEgress({
      allowPrivateDestinations: ['127.0.0.1/32'],
      lookup: resolvesTo('127.0.0.1'),
    });
    const answer = await allowing.send(`http://hooks.example.test:${port}/hook`, post);
    expect(answer).toMatchObject({ status: 200, body: '{"ok":true}' });
    expect(hits).toBe(before + 1);
    await allowing.close();
  });

  it('refuses the metadata service by literal, by another spelling and by a name resolving to it', async () => {
    const egress = createEgress({
      allowPrivateDestinations: ['127.0.0.1/32'],
      lookup: resolvesTo('169.254.169.254'),
    });
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://0xa9fea9fe/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/latest/meta-data/',
      'http://metadata.example.test/latest/meta-data/',
    ]) {
      await expect(egress.send(url, { method: 'GET', timeoutMs: 5000 }), url).rejects.toMatchObject({
        code: 'DESTINATION_REFUSED',
      });
    }
    await egress.close();
  });

  it('does not follow a redirect to a private address, and bounds the answer', async () => {
    const egress = createEgress({ allowPrivateDestinations: ['127.0.0.1/32'] });
    await expect(egress.send(`http://127.0.0.1:${port}/redirect`, post)).rejects.toMatchObject({
      code: 'DESTINATION_REFUSED',
      message: expect.stringContaining('redirect'),
    });
    await expect(
      egress.send(`http://127.0.0.1:${port}/large`, { ...post, maxBytes: 1024 }),
    ).rejects.toMatchObject({ code: 'DESTINATION_REFUSED' });
    await egress.close();
  });
});
