import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CrmConnector } from '../../src/crm/index.js';
import { startDemo, type Demo } from '../support/demo.js';
import { auditEventsOf, expectProblem, requestIdOf } from '../support/http.js';

/**
 * Load beyond what a node serves at once (issue 25 item 10): with `server.maxInFlight` requests in
 * flight, more are shed at once with 503 OVERLOADED + Retry-After (and recorded) instead of queueing;
 * health endpoints keep answering, also with many idle connections open.
 */

const crmDelayMs = 1500;

/** The embedded CRM, each call held back: requests stay in flight long enough to fill the limit. */
function slow(crm: CrmConnector): CrmConnector {
  return new Proxy(crm, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'describe') return value;
      return async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, crmDelayMs));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

let demo: Demo;
beforeAll(async () => {
  demo = await startDemo({ config: { 'server.maxInFlight': 3 }, start: { wrapConnector: slow } });
});
afterAll(() => demo?.stop());

describe('more requests than server.maxInFlight', () => {
  it('sheds the excess with 503 OVERLOADED and Retry-After, records it, and keeps /healthz and /readyz answering', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const burst = Array.from({ length: 8 }, () => demo.get('/crm/v1/accounts?limit=1', token));
    await new Promise((resolve) => setTimeout(resolve, crmDelayMs / 3));
    expect((await demo.get('/healthz')).status).toBe(200);
    expect((await demo.get('/readyz')).status).toBe(200);
    const answers = await Promise.all(burst);
    const shed = answers.filter((r) => r.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    expect(answers.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    const first = shed[0] as Response;
    expect(first.headers.get('retry-after')).toBe('1');
    await expectProblem(first, 503, 'OVERLOADED');
    const [row] = await auditEventsOf(demo, carol, requestIdOf(first));
    expect(row?.event).toMatchObject({ action: 'http.refused', outcome: 'deny', reason: 'OVERLOADED' });
  });

  it('answers /healthz with hundreds of idle connections open', async () => {
    const { port } = new URL(demo.url);
    const sockets: Socket[] = [];
    try {
      await Promise.all(
        Array.from(
          { length: 300 },
          () =>
            new Promise<void>((resolve) => {
              const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => resolve());
              socket.on('error', () => resolve());
              sockets.push(socket);
            }),
        ),
      );
      expect((await demo.get('/healthz')).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('a storm of 2,000 connections: /healthz answers during it, the excess is shed with 503 + Retry-After, not queued', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const { port } = new URL(demo.url);
    const request =
      `GET /crm/v1/accounts?limit=1 HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n` +
      `authorization: Bearer ${token}\r\nconnection: close\r\n\r\n`;
    const sockets: Socket[] = [];
    const answered: string[] = [];
    const answers: Promise<string>[] = [];
    try {
      // Opened in waves so the storm is bounded on a small machine; one connection in ten asks for data.
      for (let wave = 0; wave < 4; wave++) {
        await Promise.all(
          Array.from({ length: 500 }, (_, i) => {
            const asks = (wave * 500 + i) % 10 === 0;
            return new Promise<void>((resolve) => {
              const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
                if (asks) socket.write(request);
                resolve();
              });
              socket.on('error', () => resolve());
              sockets.push(socket);
              if (asks) answers.push(answerOf(socket).then((head) => (answered.push(head), head)));
            });
          }),
        );
      }
      expect(sockets.length).toBe(2000);
      expect((await demo.get('/healthz')).status).toBe(200);
      const heads = await Promise.all(answers);
      const shed = heads.filter((head) => head.startsWith('HTTP/1.1 503'));
      const served = heads.filter((head) => head.startsWith('HTTP/1.1 200'));
      expect(shed.length + served.length).toBe(heads.length);
      expect(shed.length).toBeGreaterThan(served.length);
      for (const head of shed) expect(head).toMatch(/\r\nretry-after: 1\r\n/i);
      // Shed at once, not queued behind the requests in flight (each held back by the slow CRM).
      expect(answered[0]).toMatch(/^HTTP\/1\.1 503/);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    expect((await demo.get('/healthz')).status).toBe(200);
  });
});

/** The status line and headers of the one answer on `socket`, once the server closes it. */
function answerOf(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text.split('\r\n\r\n')[0] ?? ''));
  });
}
