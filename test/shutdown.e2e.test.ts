import { afterAll, describe, expect, it } from 'vitest';
import type { CrmConnector } from '../src/crm/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

/**
 * Graceful shutdown, as an orchestrator drives it (SIGTERM → close): a request in flight is finished,
 * audited and covered by the final signed checkpoint; a request arriving meanwhile is refused with 503
 * (so a load balancer retries it elsewhere) or finds the port closed. The SIGTERM → exit 0 path of the
 * real process is in operations.e2e.test.ts.
 */

const crmDelayMs = 400;

/** The embedded CRM, each call held back `crmDelayMs`: a slow backend keeps a request in flight. */
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

let demo: Demo | undefined;
afterAll(async () => {
  await demo?.stop().catch(() => undefined);
});

describe('graceful shutdown', () => {
  it('finishes the request in flight, audits it, refuses new ones, and signs a final checkpoint over all', async () => {
    demo = await startDemo({ keepDataDir: true, start: { wrapConnector: slow } });
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const inFlight = demo.get('/crm/v1/accounts?limit=2', token);
    await new Promise((resolve) => setTimeout(resolve, crmDelayMs / 4));

    const closing = demo.gatehouse.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = await demo.get('/crm/v1/accounts?limit=2', token).then(
      (response) => response.status,
      () => 'connection refused',
    );
    expect([503, 'connection refused']).toContain(late);

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    const requestId = answer.headers.get('x-request-id') as string;
    expect(((await answer.json()) as { records: unknown[] }).records).toHaveLength(2);
    await closing;

    const { dataDir, config } = demo;
    const store = await openGatehouseStore(config);
    try {
      const event = await store.db
        .selectFrom('audit_events')
        .select(['idx', 'event'])
        .where('request_id', '=', requestId)
        .executeTakeFirstOrThrow();
      expect(JSON.parse(event.event)).toMatchObject({ action: 'crm.list', outcome: 'allow' });
      const { size } = await store.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number>().as('size'))
        .executeTakeFirstOrThrow();
      const last = await store.db
        .selectFrom('audit_checkpoints')
        .select('size')
        .orderBy('size', 'desc')
        .executeTakeFirstOrThrow();
      expect(Number(last.size)).toBe(Number(size));
      expect(Number(last.size)).toBeGreaterThan(event.idx);
    } finally {
      await store.close();
    }
    const verified = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
  });
});
