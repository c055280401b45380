import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redeemCodeFlow } from './support/broker.js';
import { launchChromium, type Chromium } from './support/chromium.js';
import { startDemo, type Demo } from './support/demo.js';

// The console as people use it, in Debian's Chromium under its own CSP: each duty signs in through
// the broker's `console` client and does its main task against the real server. One browser, one demo.
let demo: Demo;
let browser: Chromium;
const shots = join(import.meta.dirname, '..', 'artefacts', 'console');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

beforeAll(async () => {
  [demo, browser] = await Promise.all([startDemo(), launchChromium()]);
  mkdirSync(shots, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
});

/** Signs `user` in at the console: the IdP's login, then Allow on the broker's consent screen. */
async function signIn(user: string, path = '/console/'): Promise<void> {
  const { page } = browser;
  await page.context().clearCookies();
  await page.goto(`${demo.url}/console/signed-out`);
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${demo.url}${path}`);
  await page.waitForURL((url) => url.pathname.startsWith('/idp') || url.pathname.startsWith('/oauth'));
  while (!new URL(page.url()).pathname.endsWith('/oauth/callback')) {
    await page.waitForSelector('button[type="submit"]');
    if ((await page.locator('input[name="login"]').count()) > 0) {
      await page.fill('input[name="login"]', user);
      await page.fill('input[name="password"]', 'any');
    }
    await page.click('button[type="submit"]');
    await page.waitForLoadState();
  }
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByTestId('whoami').waitFor();
  await expect(page.getByTestId('whoami').textContent()).resolves.toContain(`${user}@example.com`);
}

/** axe-core in the page (evaluated, so the console's CSP stays on): no serious or critical violation. */
async function expectAccessible(screen: string): Promise<void> {
  const { page } = browser;
  await page.screenshot({ path: join(shots, `${screen}.png`), fullPage: true });
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: unknown }[] }[] }> } }).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))}`);
  });
  expect(violations, screen).toEqual([]);
}

describe('the console', () => {
  it('serves the console under a strict CSP, and / and deep links lead to it', async () => {
    const root = await fetch(`${demo.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console/');
    const deep = await fetch(`${demo.url}/console/my-apps`);
    expect(deep.status).toBe(200);
    const csp = deep.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    await expect(deep.text()).resolves.toContain('<div id="root"></div>');
  });

  it('maker: the admission verdict changes as alice edits her plan, and she registers it', async () => {
    const { page } = browser;
    await signIn('alice');
    await page.waitForURL((url) => url.pathname === '/console/maker');
    await page.getByRole('textbox', { name: 'App name' }).fill('lead-notes');
    await page.getByRole('textbox', { name: 'Purpose' }).fill('jot down what a lead said on the phone');
    await page.getByRole('textbox', { name: 'Scopes' }).click();
    await page.getByRole('option', { name: /^read:contact\.basic/ }).click();
    await page.keyboard.press('Escape');
    const verdict = page.getByTestId('verdict');
    await verdict.locator('[data-decision="approve"]').waitFor();
    await page.getByRole('textbox', { name: 'Scopes' }).click();
    await page.getByRole('option', { name: /^read:contact\.pii/ }).click();
    await page.keyboard.press('Escape');
    await verdict.locator('[data-decision="review"]').waitFor();
    await expect(verdict.textContent()).resolves.toContain('admission.sensitive-data-review');
    await expect(page.getByText(/read:contact\.reach gives email, phone only/).count()).resolves.toBe(1);
    await expectAccessible('maker');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.getByRole('status').getByText(/lead-notes is registered: in review/).waitFor();
    await expect(page.getByRole('table', { name: 'My registrations' }).textContent()).resolves.toContain('lead-notes');
  });
});
