import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf, type AuditRow } from '../support/http.js';

/**
 * Malformed input at the HTTP layer (issue 25 item 8, issue 15 item 9), over real loopback HTTP: every
 * refusal is problem+json with x-request-id, leaves an audit event, and never echoes what was sent.
 */

let demo: Demo;
let carol: string;
let alice: string;
beforeAll(async () => {
  demo = await startDemo();
  carol = await demo.accessToken('carol', 'console', 'audit:read');
  alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic write:contact.note');
});
afterAll(() => demo?.stop());

/** Sends raw bytes over one connection and answers what came back (the server closes or answers once). */
function rawRequest(bytes: Buffer | string): Promise<string> {
  const { port } = new URL(demo.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    let answer = '';
    socket.on('data', (chunk) => {
      answer += String(chunk);
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) socket.end();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

/** The refusal's audit event; on PostgreSQL the sequencer integrates it within moments. */
async function expectRefusalRecorded(requestId: string, reason: string): Promise<void> {
  await expect
    .poll(async () => (await auditEventsOf(demo, carol, requestId))[0]?.event, {
      timeout: 10_000,
      interval: 200,
    })
    .toMatchObject({ outcome: 'deny', reason });
}

describe('malformed input is refused in one shape and recorded', () => {
  it('bad percent-encoding in the path is 400 problem+json with x-request-id and an event', async () => {
    const response = await demo.get('/crm/v1/contacts/%E0%A4%A', alice);
    const problem = await expectProblem(response, 400, 'BAD_REQUEST');
    expect(JSON.stringify(problem)).not.toContain('%E0');
    await expectRefusalRecorded(requestIdOf(response), 'BAD_REQUEST');
  });

  it('an over-long id is 414 problem+json with x-request-id and an event, the id never echoed', async () => {
    const id = 'a'.repeat(300);
    const response = await demo.get(`/crm/v1/contacts/${id}`, alice);
    const problem = await expectProblem(response, 414, 'URI_TOO_LONG');
    expect(JSON.stringify(problem)).not.toContain(id);
    await expectRefusalRecorded(requestIdOf(response), 'URI_TOO_LONG');
  });

  it('a URL over server.maxUrlBytes is 414, recorded', async () => {
    const response = await demo.get(`/crm/v1/contacts?filter=${'x'.repeat(9000)}`, alice);
    await expectProblem(response, 414, 'URI_TOO_LONG');
    await expectRefusalRecorded(requestIdOf(response), 'URI_TOO_LONG');
  });

  it('oversized headers are 431 problem+json with x-request-id and an event, not Fastify JSON', async () => {
    const answer = await rawRequest(
      `GET /crm/v1/contacts HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    const requestId = /x-request-id: ([0-9a-f-]{36})/i.exec(answer)?.[1] as string;
    expect(requestId).toBeTruthy();
    expect(answer).not.toContain('bbbb');
    await expectRefusalRecorded(requestId, 'HEADERS_TOO_LARGE');
  });

  it('two Authorization headers are refused, not resolved to the first', async () => {
    const { port } = new URL(demo.url);
    const answer = await rawRequest(
      `GET /crm/v1/contacts?limit=1 HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n` +
        `authorization: Bearer ${alice}\r\nauthorization: Bearer someone-else\r\nconnection: close\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"BAD_REQUEST"');
    expect(answer).not.toContain('records');
    const requestId = /x-request-id: ([0-9a-f-]{36})/i.exec(answer)?.[1] as string;
    await expectRefusalRecorded(requestId, 'BAD_REQUEST');
  });

  it('invalid UTF-8 in a JSON body is 422, never stored with replacement characters', async () => {
    const response = await fetch(`${demo.url}/crm/v1/notes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"body":"call '), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    });
    await expectProblem(response, 422, 'INVALID_INPUT');
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event).toMatchObject({ outcome: 'deny', action: 'crm.create' });
  });

  it('an unknown content type is 415 and the answer does not quote it', async () => {
    const response = await fetch(`${demo.url}/crm/v1/notes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'text/x-probe-<script>' },
      body: 'x',
    });
    const problem = await expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(JSON.stringify(problem)).not.toContain('probe');
  });

  it('an upload aborted mid-body is audited, and the server keeps serving', async () => {
    const { port } = new URL(demo.url);
    const before = await json<{ records: AuditRow[] }>(
      await demo.get('/audit/v1/events?app_id=call-notes', carol),
    );
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
        socket.write(
          `POST /crm/v1/notes HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${alice}\r\n` +
            `content-type: application/json\r\ncontent-length: 5000\r\n\r\n{"body":"half`,
        );
        // Reset in the same turn as the half body: the socket is gone (and its peer address with it,
        // request.ip undefined) before the pipeline first reads the caller's address.
        socket.resetAndDestroy();
      });
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });
    await expect
      .poll(
        async () =>
          (await json<{ records: AuditRow[] }>(await demo.get('/audit/v1/events?app_id=call-notes', carol)))
            .records.length,
        { timeout: 10_000 },
      )
      .toBeGreaterThan(before.records.length);
    const after = await json<{ records: AuditRow[] }>(
      await demo.get('/audit/v1/events?app_id=call-notes', carol),
    );
    expect(after.records.some((r) => r.event.action === 'crm.create' && r.event.outcome !== 'allow')).toBe(
      true,
    );
    expect((await demo.get('/healthz')).status).toBe(200);
  });
});
