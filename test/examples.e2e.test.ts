import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type { Request } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { revokeAll } from '../src/broker/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { launchChromium, type Chromium } from './support/chromium.js';
import { onPostgres } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';

// Both example apps as a person uses them: Vite serving the app, the SDK in Debian's Chromium, the
// development IdP and the consent screen, the real gateway behind. One browser and one demo for all.
// The apps' redirect URIs fix their ports (5173, 5174), so this file runs in one pass of `npm test`
// only: the embedded one (the PostgreSQL pass runs at the same time and would want the same ports).
let demo: Demo;
let browser: Chromium;
const apps: ViteDevServer[] = [];

async function serveExample(name: string): Promise<ViteDevServer> {
  const root = join(import.meta.dirname, '..', 'examples', name);
  const server = await createServer({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'error' });
  await server.listen();
  apps.push(server);
  return server;
}

beforeAll(async () => {
  if (onPostgres) return;
  [demo, browser] = await Promise.all([startDemo(), launchChromium()]);
  // Read by the examples' vite.config.ts; unstubbed after, since the next test file shares this process.
  vi.stubEnv('GATEHOUSE_URL', demo.url);
  await serveExample('call-notes');
  await serveExample('pipeline-dashboard');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await Promise.all(apps.map((app) => app.close()));
  await browser?.close();
  await demo?.stop();
});

/** Opens the app, signs `user` in at the IdP and allows the app on the consent screen. */
async function signIn(appUrl: string, user: string, screenshot: string): Promise<void> {
  const { page } = browser;
  await page.context().clearCookies();
  await page.goto(appUrl);
  while (!new URL(page.url()).pathname.endsWith('/oauth/callback')) {
    await page.waitForSelector('button[type="submit"]');
    if ((await page.locator('input[name="login"]').count()) > 0) {
      await page.fill('input[name="login"]', user);
      await page.fill('input[name="password"]', 'any');
    }
    await page.click('button[type="submit"]');
    await page.waitForLoadState();
  }
  await browser.screenshot(screenshot);
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.toString().startsWith(appUrl) && url.pathname === '/');
  await expect(page.getByTestId('user').textContent()).resolves.toBe(`${user}@example.com`);
}

const refreshGrants = (requests: Request[]) =>
  requests.filter(
    (r) => r.url().endsWith('/oauth/token') && (r.postData() ?? '').includes('grant_type=refresh_token'),
  );

describe.skipIf(onPostgres)('call-notes in Chromium', () => {
  it('alice signs in, sees her accounts, logs a call note and sees it; the write is in the trail', async () => {
    const { page } = browser;
    const accountReads: Request[] = [];
    const onRequest = (request: Request) => {
      if (new URL(request.url()).pathname === '/crm/v1/accounts') accountReads.push(request);
    };
    page.on('request', onRequest);
    await signIn('http://localhost:5173', 'alice', 'call-notes-consent');
    const first = page.getByRole('list').first().getByRole('button').first();
    await first.waitFor();
    await first.click();
    await page.getByLabel('Call note').fill('Called about the renewal; follow up in May.');
    await page.getByRole('button', { name: 'Log note' }).click();
    await expect(
      page.getByTestId('notes').getByText('Called about the renewal; follow up in May.').waitFor(),
    ).resolves.toBeUndefined();
    await browser.screenshot('call-notes');
    const auditor = await demo.accessToken('carol', 'console', 'audit:read');
    const events = (await (await demo.get('/audit/v1/events?app_id=call-notes', auditor)).json()) as {
      records: Array<{ event: Record<string, string> }>;
    };
    const write = events.records
      .map((r) => r.event)
      .find((e) => e.action === 'crm.create' && e.outcome === 'allow');
    expect(write).toMatchObject({ actor_id: 'alice@example.com', resource_type: 'note' });
    expect(write?.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(write?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    // The list the rep sees was read with a capability token naming exactly her assigned accounts.
    page.off('request', onRequest);
    const listed = accountReads.at(-1);
    const token = ((await listed?.allHeaders())?.authorization ?? '').split(' ')[1] ?? '';
    const cap = decodeJwt(token).cap as { account_ids: string[] };
    const store = await openGatehouseStore(demo.config);
    try {
      const assigned = (
        await store.db
          .selectFrom('crm_accounts')
          .select('id')
          .where('owner', '=', 'alice@example.com')
          .execute()
      ).map((row) => row.id);
      // The app asks for the first page of them (20): each one hers, none of anybody else's.
      expect(cap.account_ids).toHaveLength(Math.min(assigned.length, 20));
      for (const id of cap.account_ids) expect(assigned).toContain(id);
    } finally {
      await store.close();
    }
    const shown = await page.getByRole('list').first().getByRole('button').count();
    expect(shown).toBe(cap.account_ids.length);
  });

  it('a phone in a note: alice (a rep, phones masked) sees it redacted in call-notes, bob (a manager) whole', async () => {
    const { page } = browser;
    const phone = '+44 20 7946 0958';
    await page.getByRole('list').first().getByRole('button').first().click();
    const written = page.waitForResponse((r) => r.url().endsWith('/crm/v1/notes') && r.status() === 201);
    await page.getByLabel('Call note').fill(`Call back on ${phone} after the board meeting.`);
    await page.getByRole('button', { name: 'Log note' }).click();
    const { id } = (await (await written).json()) as { id: string };
    await page.getByTestId('notes').getByText('[redacted:phone]').first().waitFor();
    expect(await page.getByTestId('notes').textContent()).not.toContain(phone);
    await browser.screenshot('call-notes-redacted');
    const bob = await demo.accessToken(
      'bob',
      'call-notes',
      'read:account.basic read:contact.basic read:contact.reach read:note.basic',
    );
    const note = (await (await demo.get(`/crm/v1/notes/${id}?fields=body`, bob)).json()) as { body: string };
    expect(note.body).toBe(`Call back on ${phone} after the board meeting.`);
  });

  it('refreshes once when the access token has expired, then shows a revoked sign-in in plain words', async () => {
    const { page } = browser;
    const requests: Request[] = [];
    page.on('request', (request) => requests.push(request));
    // The browser's clock jumps past the token's expiry: the SDK refreshes before the next call.
    await page.clock.install();
    await page.clock.fastForward('20:00');
    const notesRead = page.waitForResponse((r) => r.url().includes('/crm/v1/notes') && r.status() === 200);
    await page.getByRole('list').first().getByRole('button').nth(1).click();
    await notesRead;
    expect(refreshGrants(requests)).toHaveLength(1);
    // An admin revokes every token of alice (offboarding): the next call says so.
    const cli = await openGatehouseStore(demo.config);
    try {
      await revokeAll(cli.db, { userId: 'alice@example.com', reason: 'test', actor: 'cli' });
    } finally {
      await cli.close();
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      await page.getByRole('list').first().getByRole('button').first().click();
      if ((await page.locator('[data-kind="TokenRevoked"]').count()) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await expect(page.getByRole('alert').textContent()).resolves.toContain('revoked');
    await browser.screenshot('call-notes-revoked');
    page.removeAllListeners('request');
  });
});

describe.skipIf(onPostgres)('pipeline-dashboard in Chromium', () => {
  it('bob sees the pipeline by stage and by month as charts of aggregates; asking for the deals is refused', async () => {
    const { page } = browser;
    const aggregates: Request[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/crm/v1/opportunities/aggregate')) aggregates.push(request);
    });
    await signIn('http://localhost:5174', 'bob', 'pipeline-dashboard-consent');
    await page.getByTestId('stages').locator('tbody tr').first().waitFor();
    await page.locator('.recharts-wrapper').nth(1).locator('.recharts-bar-rectangle').first().waitFor();
    const charts = page.locator('.recharts-wrapper');
    expect(await charts.count()).toBe(2);
    expect(await charts.nth(1).locator('.recharts-bar-rectangle').count()).toBeGreaterThan(1);
    const filtered = page.waitForResponse((r) => r.url().includes('filter=') && r.status() === 200);
    await page.getByLabel('Open deals only').check();
    await filtered;
    await browser.screenshot('pipeline-dashboard');
    await page.getByRole('button', { name: 'Show the deals behind it' }).click();
    await expect(page.getByRole('alert').getAttribute('data-kind')).resolves.toBe('PolicyDenied');
    await browser.screenshot('pipeline-dashboard-refused');
    page.removeAllListeners('request');

    // Every grouping and filter the dashboard sent is in the audit event of that request.
    const auditor = await demo.accessToken('carol', 'console', 'audit:read');
    const sent = aggregates.map((request) => new URL(request.url()).searchParams);
    expect(sent.some((params) => params.getAll('filter').length > 0)).toBe(true);
    const answers = await Promise.all(aggregates.map((request) => request.response()));
    for (const [i, params] of sent.entries()) {
      const requestId = (await answers[i]?.allHeaders())?.['x-request-id'] ?? '';
      const page = (await (await demo.get(`/audit/v1/events?request_id=${requestId}`, auditor)).json()) as {
        records: Array<{ event: { reason: string; action: string } }>;
      };
      const event = page.records.find((r) => r.event.action === 'crm.aggregate')?.event;
      expect(event?.reason).toContain(`group_by ${params.get('group_by')}; `);
      for (const filter of params.getAll('filter')) expect(event?.reason).toContain(`filter ${filter}; `);
    }
  });
});
