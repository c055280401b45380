import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { insertDpopApp, pkce } from './support/broker.js';
import { launchChromium, type Chromium } from './support/chromium.js';
import { gatehouseAsync, spawnGatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

// The sign-in as a browser lives it, in Debian's Chromium: CSP, cookies and redirects enforced, which
// fetch-based tests cannot show.
let demo: Demo;
let store: Store;
let browser: Chromium;
let app: Server;
let redirectUri: string;

beforeAll(async () => {
  app = createServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>app</title>signed in');
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  redirectUri = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
  [demo, browser] = await Promise.all([startDemo(), launchChromium()]);
  store = await openGatehouseStore(demo.config);
  await insertDpopApp(store.db, [redirectUri]);
});

afterAll(async () => {
  await browser?.close();
  await store?.close();
  await demo?.stop();
  await new Promise((resolve) => app?.close(resolve));
});

/** Opens the broker's authorize URL and signs in at the development IdP; stops on the consent screen. */
async function toConsentScreen(state: string): Promise<void> {
  const { page } = browser;
  const authorize = new URL(`${demo.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: 'dpop-notes',
    redirect_uri: redirectUri,
    scope: 'read:account.basic',
    state,
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(authorize.toString());
  // The IdP's login form (once per browser session) and its consent to its own client, until the
  // browser is back at the broker.
  while (!new URL(page.url()).pathname.endsWith('/oauth/callback')) {
    if ((await page.locator('input[name="login"]').count()) > 0) {
      await page.fill('input[name="login"]', 'alice');
      await page.fill('input[name="password"]', 'any');
    }
    await page.click('button[type="submit"]');
    await page.waitForLoadState();
  }
}

describe('the consent screen in Chromium', () => {
  it('Allow (pressed from the keyboard) takes the browser to the app with its code: form-action admits the redirect URI', async () => {
    const { page } = browser;
    await toConsentScreen('chromium-1');
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toContain('DPoP notes');
    await expect(page.getByRole('link', { name: 'My apps' }).getAttribute('href')).resolves.toBe(
      '/console/my-apps',
    );
    await browser.screenshot('consent-screen');
    await page.getByRole('button', { name: 'Allow' }).focus();
    await page.keyboard.press('Enter');
    // On the old CSP (form-action 'self') Chromium blocked this hop and the page stayed put.
    await page.waitForURL((url) => url.toString().startsWith(redirectUri), { timeout: 10_000 });
    const back = new URL(page.url());
    expect(back.searchParams.get('code')).toMatch(/.{20,}/);
    expect(back.searchParams.get('state')).toBe('chromium-1');
    expect(back.searchParams.get('iss')).toBe(demo.url);
  });

  it('Deny takes the browser back to the app with access_denied', async () => {
    const { page } = browser;
    await toConsentScreen('chromium-2');
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL((url) => url.toString().startsWith(redirectUri), { timeout: 10_000 });
    const back = new URL(page.url());
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.has('code')).toBe(false);
  });
});

describe('gatehouse login in Chromium', () => {
  it('the loopback flow: the CLI prints the sign-in URL, dave signs in at the IdP, whoami shows him verified', async () => {
    const { page, context } = browser;
    // A fresh IdP session: the tests above signed alice in.
    await context.clearCookies();
    const login = spawnGatehouse(['login', '--data-dir', demo.dataDir]);
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => login.on('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      login.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const found = /^https?:\/\/\S+\/oauth\/authorize\?\S+$/m.exec(stderr);
        if (found) resolve(found[0]);
      });
      login.on('exit', () => reject(new Error(`gatehouse login exited: ${stderr}`)));
    });
    const redirect = new URL(new URL(url).searchParams.get('redirect_uri') ?? '');
    expect(redirect.hostname).toBe('127.0.0.1');
    await page.goto(url);
    // The IdP's login and its own consent, then the broker's consent screen for the console client.
    const allow = page.getByRole('button', { name: 'Allow' });
    while ((await allow.count()) === 0) {
      if ((await page.locator('input[name="login"]').count()) > 0) {
        await page.fill('input[name="login"]', 'dave');
        await page.fill('input[name="password"]', 'any');
      }
      await page.click('button[type="submit"]');
      await page.waitForLoadState();
    }
    await allow.click();
    await page.waitForURL((at) => at.toString().startsWith(redirect.origin), { timeout: 10_000 });
    await expect(page.locator('body').textContent()).resolves.toContain('Signed in to Gatehouse');
    expect(await exited, stderr).toBe(0);

    const whoami = await gatehouseAsync(['whoami', '--json', '--data-dir', demo.dataDir]);
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(JSON.parse(whoami.stdout)).toMatchObject({
      verified: true,
      user: 'dave@example.com',
      role: 'admin',
      server: demo.url,
    });
  });
});
