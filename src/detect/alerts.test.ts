import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alertOf, type Alert } from './alerts.js';
import type { Incident } from './incidents.js';
import { cefOf, syslogMessage, syslogSink } from './syslog.js';
import { deliveryHeader, signatureHeader, timestampHeader, webhookSignature } from './index.js';
import { webhookSink } from './webhook.js';
import { createEgress } from '../egress/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const incident: Incident = {
  id: 'inc_0mx1htq2s00f1cf4d0a',
  rule: 'mass_export',
  actor: 'erin@example.com',
  app_id: 'call-notes',
  severity: 'high',
  state: 'open',
  summary:
    'the bulk-export guard refused call-notes (user erin@example.com) reading contact: 80 distinct | a=b\\c',
  detections: 1,
  containment: [
    {
      action: 'suspend_app',
      target: 'app:call-notes',
      at: '2026-11-29T07:03:54.280Z',
      status: 'applied',
      detail: '',
    },
  ],
  playbook_version: '3108b7aef112',
  opened_at: '2026-11-29T07:03:53.668Z',
  updated_at: '2026-11-29T07:03:53.668Z',
  closed_at: null,
};
const alert: Alert = alertOf(incident, 'opened', 3, new Date('2026-11-29T07:03:54.300Z'));

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real HTTP receiver on loopback that answers each request with the next status of `statuses`. */
async function receiver(statuses: number[]): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.statusCode = statuses[Math.min(received.length - 1, statuses.length - 1)];
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/gatehouse?key=s3cret`,
    received,
  };
}

describe('the webhook sink', () => {
  const secret = 'a-webhook-secret-of-some-length';
  // The receivers here listen on loopback, which the egress refuses unless allow-listed.
  const egress = createEgress({ allowPrivateDestinations: ['127.0.0.1/32'] });
  afterAll(() => egress.close());

  it('retries a 503 with backoff, signs every attempt over timestamp.body, one delivery id', async () => {
    const { url, received } = await receiver([503, 200]);
    const sink = webhookSink(
      {
        url,
        secret,
        timeoutMs: 2000,
        retries: 3,
        backoffMs: 20,
        minSeverity: 'medium',
      },
      egress,
    );
    await sink.send(alert);
    expect(received).toHaveLength(2);
    for (const { headers, body } of received) {
      expect(headers['content-type']).toBe('application/json');
      expect(headers[signatureHeader]).toBe(
        webhookSignature(secret, headers[timestampHeader] as string, body),
      );
      expect(JSON.parse(body)).toEqual(alert);
    }
    expect(received[0].headers[deliveryHeader]).toBe(received[1].headers[deliveryHeader]);
    // The sink's name (in logs and timelines) carries no path or query that may hold a key.
    expect(sink.name).toBe(`webhook ${new URL(url).origin}`);
  });

  it('a receiver that refuses the alert (400) is not retried; the failure says so', async () => {
    const { url, received } = await receiver([400]);
    const sink = webhookSink(
      {
        url,
        secret,
        timeoutMs: 2000,
        retries: 3,
        backoffMs: 20,
        minSeverity: 'medium',
      },
      egress,
    );
    await expect(sink.send(alert)).rejects.toThrow(/answered 400/);
    expect(received).toHaveLength(1);
  });

  it('an unreachable receiver fails after its retries, without the URL path or query in the error', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const sink = webhookSink(
      {
        url: `http://127.0.0.1:${port}/x?token=abc`,
        timeoutMs: 500,
        retries: 2,
        backoffMs: 10,
        minSeverity: 'low',
      },
      egress,
    );
    const error = (await sink.send(alert).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/unreachable/);
    expect(error.message).not.toContain('token=abc');
  });

  it('a receiver on loopback is refused unless allow-listed, and never contacted', async () => {
    const { url, received } = await receiver([200]);
    const guarded = createEgress({ allowPrivateDestinations: [] });
    const sink = webhookSink(
      { url, timeoutMs: 2000, retries: 3, backoffMs: 10, minSeverity: 'low' },
      guarded,
    );
    await expect(sink.send(alert)).rejects.toThrow(
      /was refused: 127\.0\.0\.1 \(loopback\) is not a public address/,
    );
    expect(received).toHaveLength(0);
    await guarded.close();
  });

  it('an alert holds names and counts, never record contents or tokens', () => {
    expect(Object.keys(alert).sort()).toEqual(
      [
        'type',
        'reason',
        'incident_id',
        'rule',
        'severity',
        'state',
        'actor',
        'app_id',
        'summary',
        'detections',
        'evidence_count',
        'containment',
        'opened_at',
        'sent_at',
      ].sort(),
    );
  });
});

describe('the syslog sink (CEF in RFC 5424)', () => {
  it('formats a CEF record with escaped header and extension values', () => {
    const cef = cefOf(alert, '0.1.0');
    expect(cef.startsWith('CEF:0|Gatehouse|Gatehouse|0.1.0|mass_export|Mass export of CRM records|8|')).toBe(
      true,
    );
    expect(cef).toContain('externalId=inc_0mx1htq2s00f1cf4d0a');
    expect(cef).toContain('suser=erin@example.com');
    expect(cef).toContain('cs1Label=appId cs1=call-notes');
    expect(cef).toContain(
      'msg=the bulk-export guard refused call-notes (user erin@example.com) reading contact: 80 distinct | a\\=b\\\\c',
    );
    expect(cef).toContain(`rt=${Date.parse(alert.sent_at)}`);
  });

  it('frames RFC 5424: PRI from facility and severity, version 1, timestamp, host, app, msgid', () => {
    const message = syslogMessage({
      facility: 13,
      severity: 'high',
      timestamp: alert.sent_at,
      hostname: 'gate house',
      message: 'CEF:0|x',
    });
    expect(message).toBe(
      `<107>1 2026-11-29T07:03:54.300Z gatehouse gatehouse ${process.pid} incident - CEF:0|x`,
    );
  });

  it('sends one datagram per alert over UDP to a real socket', async () => {
    const socket = createSocket('udp4');
    const got = new Promise<string>((resolve) =>
      socket.once('message', (message) => resolve(message.toString('utf8'))),
    );
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const sink = syslogSink(
      { host: '127.0.0.1', port: socket.address().port, protocol: 'udp', facility: 10, minSeverity: 'low' },
      '0.1.0',
    );
    await sink.send(alert);
    const message = await got;
    expect(message).toMatch(
      /^<83>1 2026-11-29T07:03:54\.300Z \S+ gatehouse \d+ incident - CEF:0\|Gatehouse\|/,
    );
    expect(message).toContain('cs3=suspend_app app:call-notes applied');
  });

  it('sends octet-counted frames over TCP to a real listener', async () => {
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      const server = createTcpServer((connection) => {
        connection.on('data', (chunk) => chunks.push(chunk));
        connection.on('end', () => resolve());
      });
      server.listen(0, '127.0.0.1', () => {
        const sink = syslogSink(
          {
            host: '127.0.0.1',
            port: (server.address() as AddressInfo).port,
            protocol: 'tcp',
            facility: 13,
            minSeverity: 'low',
          },
          '0.1.0',
        );
        void sink.send(alert);
      });
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    });
    await done;
    const frame = Buffer.concat(chunks).toString('utf8');
    const space = frame.indexOf(' ');
    const length = Number(frame.slice(0, space));
    expect(Buffer.byteLength(frame.slice(space + 1))).toBe(length);
    expect(frame.slice(space + 1)).toMatch(/^<107>1 /);
  });
});
