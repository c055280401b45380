import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanBundleAt } from '../src/catalog/index.js';
import { redeemCodeFlow } from './support/broker.js';
import { auditEventsOf, requestIdOf } from './support/http.js';
import { launchChromium, type Chromium } from './support/chromium.js';
import { startDemo, type Demo } from './support/demo.js';

// The console as people use it, in Debian's Chromium under its own CSP: each duty signs in through
// the broker's `console` client and does its main task against the real server. One browser, one demo.
let demo: Demo;
let browser: Chromium;
const shots = join(import.meta.dirname, '..', 'artefacts', 'console');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

beforeAll(async () => {
  [demo, browser] = await Promise.all([
    startDemo({
      config: {
        // The admin's incident comes from a real detection: a paging export refused at 50 records.
        'detect.enabled': true,
        'limits.bulkExport': { maxTracked: 50 },
        // Every sign-in here comes from 127.0.0.1; that is not credential stuffing.
        'detect.rules.credential_stuffing.maxPerNetwork': 10_000,
      },
    }),
    launchChromium(),
  ]);
  mkdirSync(shots, { recursive: true });
  // A step that cannot happen fails on its own line, well inside the test's time.
  browser.page.setDefaultTimeout(10_000);
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
    const axe = (
      window as unknown as {
        axe: {
          run(): Promise<{ violations: { id: string; impact: string; nodes: { target: unknown }[] }[] }>;
        };
      }
    ).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))}`);
  });
  expect(violations, screen).toEqual([]);
}

describe('the console', () => {
  it("opens a problem's type as a page styled under its own CSP, readable and linked to every code", async () => {
    const { page } = browser;
    const refused = await fetch(`${demo.url}/crm/v1/contacts`);
    const problem = (await refused.json()) as { type: string; code: string };
    expect(problem.type).toMatch(new RegExp(`^${demo.url}/problems/`));
    const violations: string[] = [];
    const onConsole = (message: { text(): string }) => {
      if (message.text().includes('Content Security Policy')) violations.push(message.text());
    };
    page.on('console', onConsole);
    try {
      await page.goto(problem.type);
      await expect(page.locator('h1').textContent()).resolves.toBe(problem.code);
      // The stylesheet is admitted by its hash: a layout rule of it took effect, and nothing was refused.
      await expect(page.evaluate(() => getComputedStyle(document.body).maxWidth)).resolves.toBe('960px');
      await expectAccessible('problem-page');
      await page.getByRole('link', { name: 'All error codes' }).click();
      await page.waitForURL(`${demo.url}/problems#${problem.type.split('/').at(-1)}`);
      await expect(
        page.locator(`tr[id="${problem.type.split('/').at(-1)}"] td:first-child code`).textContent(),
      ).resolves.toBe(problem.code);
      await expectAccessible('problem-table');
      expect(violations).toEqual([]);
    } finally {
      page.off('console', onConsole);
    }
  });

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
    expect((await fetch(`${demo.url}/console/assets/not-built.js`)).status).toBe(404);
  });

  it("refuses an app's own token on the console's calls: it cannot list or revoke the user's grants", async () => {
    const appToken = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    for (const [method, path] of [
      ['GET', '/admin/v1/me'],
      ['GET', '/admin/v1/me/apps'],
      ['POST', '/admin/v1/me/apps/pipeline-dashboard/revoke'],
      ['POST', '/admin/v1/admission'],
    ] as const) {
      const answer = await demo.send(method, path, appToken, method === 'POST' ? { json: {} } : {});
      expect(answer.status, `${method} ${path}`).toBe(403);
      await expect(answer.json()).resolves.toMatchObject({ code: 'SCOPE_MISSING' });
    }
    expect((await demo.get('/audit/v1/public-key', appToken)).status).toBe(403);
  });

  it('judges a plan without registering it (the dry run of the maker form)', async () => {
    const alice = await demo.accessToken('alice', 'console', 'maker');
    const plan = {
      name: 'dry-run-notes',
      owner: 'alice@example.com',
      purpose: 'see what the policy says',
      scopes: ['read:contact.pii'],
      data_classes: ['internal'],
      retention_days: 30,
      expected_users: 3,
      telemetry: true,
    };
    const judged = await demo.send('POST', '/admin/v1/admission', alice, { json: plan });
    await expect(judged.json()).resolves.toMatchObject({
      decision: 'deny',
      rules: expect.arrayContaining([expect.objectContaining({ id: 'admission.pii-scope-not-needed' })]),
    });
    const invalid = await demo.send('POST', '/admin/v1/admission', alice, { json: { name: 'x' } });
    await expect(invalid.json()).resolves.toMatchObject({ decision: 'invalid', errors: expect.any(Array) });
    expect((await demo.get('/admin/v1/apps/dry-run-notes', alice)).status).toBe(404);
  });

  it('maker: the admission verdict changes as alice edits her plan, and she registers it', async () => {
    const { page } = browser;
    await signIn('alice');
    await page.waitForURL((url) => url.pathname === '/console/maker');
    await page.getByRole('textbox', { name: 'App name' }).fill('lead-notes');
    await page.getByRole('textbox', { name: 'Purpose' }).fill('jot down what a lead said on the phone');
    await page.getByRole('combobox', { name: 'Scopes' }).click();
    await page.getByRole('option', { name: /^read:contact\.basic/ }).click();
    await page.keyboard.press('Escape');
    const verdict = page.getByTestId('verdict');
    await verdict.locator('[data-decision="approve"]').waitFor();
    const scopes = page.getByRole('combobox', { name: 'Scopes' });
    await scopes.click();
    await page.getByRole('option', { name: /^read:contact\.reach/ }).click();
    await verdict.locator('[data-decision="review"]').waitFor();
    await expect(verdict.textContent()).resolves.toContain('admission.sensitive-data-review');
    // Asking for more than the purpose needs: refused, and the form names the narrower scope.
    await page.getByRole('option', { name: /^read:contact\.pii/ }).click();
    await verdict.locator('[data-decision="deny"]').waitFor();
    await expect(verdict.textContent()).resolves.toContain('admission.pii-scope-not-needed');
    await expect(
      page.getByText('Instead of read:contact.pii, read:contact.reach gives email, phone only.').count(),
    ).resolves.toBe(1);
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Escape');
    await verdict.locator('[data-decision="review"]').waitFor();
    await expectAccessible('maker');
    await page.getByRole('button', { name: 'Register' }).click();
    await page
      .getByRole('status')
      .getByText(/lead-notes is registered: in review/)
      .waitFor();
    await page
      .getByRole('table', { name: 'My registrations' })
      .getByRole('cell', { name: 'lead-notes' })
      .waitFor();
  });

  it("maker: alice attaches her app's bundle to the registration and sees the server's scan findings", async () => {
    const { page } = browser;
    // The dirty example bundle (an embedded key, a direct CRM call) as the .tgz a maker would upload.
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-console-bundle-'));
    const file = join(dir, 'dirty.tgz');
    execFileSync('tar', ['czf', file, '-C', join(import.meta.dirname, 'fixtures', 'bundles', 'dirty'), '.']);
    await signIn('alice');
    await page.waitForURL((url) => url.pathname === '/console/maker');
    await page.getByRole('textbox', { name: 'App name' }).fill('bundle-notes');
    await page.getByRole('textbox', { name: 'Purpose' }).fill('keep call notes next to contacts');
    await page.getByRole('combobox', { name: 'Scopes' }).click();
    await page.getByRole('option', { name: /^read:contact\.basic/ }).click();
    await page.keyboard.press('Escape');
    await page.getByTestId('verdict').locator('[data-decision="approve"]').waitFor();
    await page.locator('input[type="file"]').setInputFiles(file);
    await page.getByRole('button', { name: 'Register' }).click();
    const scan = page.getByTestId('scan');
    await scan.waitFor();
    await expect(scan.textContent()).resolves.toContain('admission.scan-critical');
    await expect(scan.locator('strong[data-decision="deny"]').count()).resolves.toBe(1);
    // The numbers are the server's own scan of those bytes.
    const expected = await scanBundleAt(file);
    expect(expected.summary.critical).toBeGreaterThan(0);
    await expect(scan.getByRole('row', { name: /critical findings/ }).textContent()).resolves.toContain(
      String(expected.summary.critical),
    );
    await expect(scan.textContent()).resolves.toContain(expected.digest.slice(0, 19));
    await expectAccessible('maker-bundle');
    // A refused bundle is not kept: the app stays as it was registered.
    const alice = await demo.accessToken('alice', 'console', 'maker');
    const app = (await (await demo.get('/admin/v1/apps/bundle-notes', alice)).json()) as {
      state: string;
      bundle_digest: string | null;
    };
    expect(app).toMatchObject({ state: 'approved', bundle_digest: null });
  });

  it('everyone: alice revokes call-notes in "My apps", and the app\'s next call is refused', async () => {
    const { page } = browser;
    const granted = (await (
      await redeemCodeFlow({
        base: demo.url,
        redirectUri: 'http://localhost:5173/callback',
        scope: 'read:account.basic',
        user: 'alice',
      })
    ).json()) as { access_token: string };
    expect((await demo.get('/crm/v1/accounts?limit=1', granted.access_token)).status).toBe(200);
    // The consent page's "My apps" link is a deep link: sign-in comes back to it.
    await signIn('alice', '/console/my-apps');
    await page.waitForURL((url) => url.pathname === '/console/my-apps');
    const card = page.getByRole('region', { name: 'call-notes' });
    await expect(card.textContent()).resolves.toContain(
      'read account (basic): name, industry, territory, owner',
    );
    await expectAccessible('my-apps');
    await card.getByRole('button', { name: 'Revoke call-notes' }).click();
    await page.getByRole('status').getByText('call-notes can no longer act for you').waitFor();
    await expect.poll(() => page.getByRole('region', { name: 'call-notes' }).count()).toBe(0);
    // Every node applies a revocation within its revocation poll (on PostgreSQL, one shared list).
    await expect
      .poll(async () => (await demo.get('/crm/v1/accounts?limit=1', granted.access_token)).status, {
        timeout: 5000,
      })
      .toBe(401);
    const refused = await demo.get('/crm/v1/accounts?limit=1', granted.access_token);
    await expect(refused.json()).resolves.toMatchObject({ code: 'TOKEN_REVOKED' });
  });

  it('reviewer: rita approves lead-notes with a reason, and cannot act on her own app', async () => {
    const { page } = browser;
    const rita = await demo.accessToken('rita', 'console', 'maker review');
    const own = await demo.send('POST', '/admin/v1/apps', rita, {
      json: {
        name: 'rita-notes',
        owner: 'rita@example.com',
        purpose: 'keep my review notes next to contacts',
        scopes: ['read:contact.reach'],
        data_classes: ['internal'],
        retention_days: 30,
        expected_users: 1,
        telemetry: true,
      },
    });
    expect(own.status).toBe(201);
    await signIn('rita');
    await page.waitForURL((url) => url.pathname === '/console/review');
    const mine = page.getByRole('region', { name: 'rita-notes' });
    await mine.waitFor();
    await expect(mine.getByText('another reviewer must decide on it').count()).resolves.toBe(1);
    await expect(mine.getByRole('button', { name: 'Approve' }).count()).resolves.toBe(0);
    const card = page.getByRole('region', { name: 'lead-notes' });
    await expect(card.textContent()).resolves.toContain('admission.sensitive-data-review');
    await expect(card.getByRole('table').textContent()).resolves.toContain('read:contact.reach');
    await expectAccessible('review');
    await card.getByRole('textbox', { name: /Reason/ }).fill('reach only, for call follow-up; fine');
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('status').getByText('lead-notes is now approved.').waitFor();
    const approved = await demo.get('/admin/v1/apps/lead-notes', rita);
    await expect(approved.json()).resolves.toMatchObject({
      state: 'approved',
      approved_by: 'rita@example.com',
    });
  });

  it('reviewer: rita decides an elevation request beside the queue, and sees the comment history of each app', async () => {
    const { page } = browser;
    const alice = await demo.accessToken('alice', 'pipeline-dashboard', 'read:account.basic');
    const asked = await demo.send('POST', '/oauth/elevations', alice, {
      json: { scope: 'read:opportunity.financial', justification: 'quarter-end forecast with finance' },
    });
    expect(asked.status).toBe(201);
    const { id } = (await asked.json()) as { id: string };
    await signIn('rita');
    await page.waitForURL((url) => url.pathname === '/console/review');
    // lead-notes was approved in the test before: its history carries rita's reason.
    const request = page.getByRole('region', { name: 'alice@example.com through pipeline-dashboard' });
    await expect(request.textContent()).resolves.toContain('quarter-end forecast with finance');
    await expect(page.getByRole('region', { name: 'rita-notes' }).textContent()).resolves.toContain(
      'Comments so far',
    );
    await expectAccessible('review-elevations');
    await request.getByRole('button', { name: 'Approve elevation of alice@example.com' }).click();
    await page.getByRole('status', { name: 'Elevation decisions' }).getByText('is approved').waitFor();
    await expect.poll(() => request.count()).toBe(0);
    const rita = await demo.accessToken('rita', 'console', 'review');
    const decided = await demo.get(`/oauth/elevations/${id}`, rita);
    await expect(decided.json()).resolves.toMatchObject({ status: 'approved', reviewer: 'rita@example.com' });
    const lead = await demo.get('/admin/v1/apps/lead-notes', rita);
    const { history } = (await lead.json()) as { history: { reason: string }[] };
    expect(history.map((h) => h.reason)).toContain('reach only, for call follow-up; fine');
  });

  it('auditor: carol finds a request by its id, sees it verified in the browser, and a tampered proof rejected', async () => {
    const { page } = browser;
    const token = await demo.accessToken('bob', 'pipeline-dashboard', 'read:account.basic');
    const read = await demo.get('/crm/v1/accounts?limit=1', token);
    const requestId = read.headers.get('x-request-id') ?? '';
    await signIn('carol');
    await page.waitForURL((url) => url.pathname === '/console/audit');
    await expect
      .poll(() => page.getByRole('textbox', { name: 'Verifier key' }).inputValue())
      .toMatch(/^gatehouse\/audit\+[0-9a-f]{8}\+/);
    const search = async () => {
      await page.getByRole('textbox', { name: 'Request id' }).fill(requestId);
      await page.getByRole('button', { name: 'Search' }).click();
    };
    await search();
    const row = page.locator(`tr[data-request-id="${requestId}"]`);
    await row.locator('[data-integrity="verified"]').waitFor();
    await expect(page.getByRole('status', { name: 'Checkpoints' }).textContent()).resolves.toContain(
      'signed by the verifier key',
    );
    await expectAccessible('audit');
    // A server (or anyone between) that alters one hash of the proof: the browser refuses the event.
    await page.route('**/audit/v1/proof/inclusion**', async (route) => {
      const answer = await route.fetch();
      const body = (await answer.json()) as { hashes: string[] };
      body.hashes[0] = (body.hashes[0] ?? '').replace(/^./, (c) => (c === '0' ? '1' : '0'));
      await route.fulfill({ response: answer, json: body });
    });
    // Checkpoints are signed on a schedule, not per request: grow the log and wait for a newer one, so
    // the next search meets a checkpoint the browser must check against the one it has seen.
    const auditor = await demo.accessToken('carol', 'console', 'audit:read');
    const published = async () =>
      Number((await (await demo.get('/audit/v1/checkpoint', auditor)).text()).split('\n')[1]);
    const seen = await published();
    await demo.get('/crm/v1/accounts?limit=1', token);
    await expect.poll(published, { timeout: 10_000 }).toBeGreaterThan(seen);
    await search();
    await row.locator('[data-integrity="rejected"]').waitFor();
    await expect(row.textContent()).resolves.toContain('inclusion proof does not lead to the signed root');
    await page.screenshot({ path: join(shots, 'audit-tampered.png'), fullPage: true });
    await page.unroute('**/audit/v1/proof/inclusion**');
    // The log grew between the two searches: the newer checkpoint was checked against the older one.
    await expect(page.getByRole('status', { name: 'Checkpoints' }).textContent()).resolves.toMatch(
      /extends checkpoint \d+: consistent/,
    );
  });

  it('admin: dave sees the incident a mass export opened, and restores the suspended app', async () => {
    const { page } = browser;
    // Sensitive reads for the dashboards: e-mail addresses are pii.
    const reach = await demo.accessToken('bob', 'call-notes', 'read:contact.reach');
    expect((await demo.get('/crm/v1/contacts?limit=3&fields=email', reach)).status).toBe(200);
    const erin = await demo.accessToken('erin', 'call-notes', 'read:contact.basic');
    const first = await demo.get('/crm/v1/contacts?limit=40&fields=first_name,last_name', erin);
    const { next_cursor } = (await first.json()) as { next_cursor: string };
    const next = await demo.get(
      `/crm/v1/contacts?limit=40&fields=first_name,last_name&cursor=${next_cursor}`,
      erin,
    );
    expect(next.status).toBe(403);
    await signIn('dave');
    await page.waitForURL((url) => url.pathname === '/console/admin');
    // The view polls incidents: the containment shows once detection has applied it.
    const card = page.getByRole('region', { name: 'mass_export · call-notes' });
    const restore = card.getByRole('button', { name: 'Restore' });
    await restore.waitFor({ timeout: 20_000 });
    await expect.poll(() => card.textContent()).toMatch(/suspend_app app:call-notes: applied/);
    await page.getByRole('img', { name: /call-notes \d+ requests/ }).waitFor({ timeout: 20_000 });
    await page
      .getByRole('img', { name: /^Records read since start: .*call-notes [1-9]\d* records/ })
      .waitFor();
    await page.getByRole('img', { name: /^Sensitive records read: call-notes [1-9]\d* sensitive/ }).waitFor();
    const metrics = await (
      await demo.get('/metrics', await demo.accessToken('dave', 'console', 'admin'))
    ).text();
    expect(metrics).toMatch(/gatehouse_records_read_total\{app="call-notes",data_class="pii"\} [1-9]/);
    await expectAccessible('admin');
    await card.getByRole('textbox', { name: /Reason to restore/ }).fill('paging bug fixed by the maker');
    await restore.click();
    await page
      .getByRole('status')
      .getByText(/containment lifted/)
      .waitFor();
    await expect.poll(() => card.textContent()).toMatch(/suspend_app app:call-notes: reversed/);
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const app = (await (await demo.get('/admin/v1/apps/call-notes', dave)).json()) as { state: string };
    expect(app.state).toBe('approved');
    // And an app suspended by hand, with the reason in the trail.
    await page.getByRole('textbox', { name: 'Reason for a change to an app' }).fill('owner left the company');
    await page.getByRole('button', { name: 'suspend pipeline-dashboard' }).click();
    await page
      .getByRole('status', { name: 'App changes' })
      .getByText('pipeline-dashboard is now suspended.')
      .waitFor();
    const suspended = await demo.get('/admin/v1/apps/pipeline-dashboard', dave);
    await expect(suspended.json()).resolves.toMatchObject({ state: 'suspended' });
  }, 60_000);

  it('auditor: carol downloads the evidence bundle of the incident', async () => {
    const { page } = browser;
    await signIn('carol');
    await page.waitForURL((url) => url.pathname === '/console/audit');
    const button = page.getByRole('button', { name: /^Download evidence of inc_/ }).first();
    await button.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    expect(download.suggestedFilename()).toMatch(/^evidence-inc_\w+\.json$/);
    const bundle = JSON.parse(readFileSync(await download.path(), 'utf8')) as { events: unknown[] };
    expect(bundle.events.length).toBeGreaterThan(0);
  });

  it('auditor: the live tail shows a new event as it is appended, verified in the browser', async () => {
    const { page } = browser;
    await signIn('carol');
    await page.waitForURL((url) => url.pathname === '/console/audit');
    await expect
      .poll(() => page.getByRole('textbox', { name: 'Verifier key' }).inputValue())
      .toMatch(/^gatehouse\/audit\+/);
    await page.getByRole('switch', { name: 'Follow new events' }).check();
    const tail = page.getByRole('table', { name: 'New audit events' });
    await tail.waitFor();
    const bob = await demo.accessToken('bob', 'call-notes', 'read:account.basic');
    const read = await demo.get('/crm/v1/accounts?limit=1', bob);
    const row = tail.locator(`tr[data-request-id="${requestIdOf(read)}"]`);
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain('bob@example.com');
    // Checkpoints are signed on a schedule: the event is verified once one covers it.
    await row.locator('[data-integrity="verified"]').waitFor({ timeout: 20_000 });
    await expectAccessible('audit-tail');
  }, 60_000);

  it('admin: dave reads the policy library, runs its tests, simulates a candidate against recorded traffic and publishes with a reason', async () => {
    const { page } = browser;
    await signIn('dave');
    await page.getByRole('link', { name: 'Policies' }).click();
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const before = (await (await demo.get('/admin/v1/policies', dave)).json()) as { version: string };
    await expect.poll(() => page.getByTestId('policy-version').textContent()).toBe(before.version);
    await page.getByRole('button', { name: 'Run tests' }).click();
    // Every case of the library through Cedar: the slowest step here on a busy machine.
    await page.getByTestId('policy-tests').locator('[data-passed]').waitFor({ timeout: 30_000 });
    await expect(
      page.getByTestId('policy-tests').locator('[data-passed]').getAttribute('data-passed'),
    ).resolves.toBe('true');
    // A candidate that forbids everything: every recorded allow would turn to deny, under that rule.
    const text = page.getByRole('textbox', { name: /^Text of runtime\// });
    const original = await text.inputValue();
    await text.fill(
      `${original}\n@id("runtime.freeze")\n@reason("everything stops")\nforbid (principal, action, resource);\n`,
    );
    await page.getByRole('button', { name: 'Simulate' }).click();
    const frozen = page.getByTestId('simulation').locator('tr[data-change="allow_to_deny"]', {
      hasText: 'runtime.freeze',
    });
    await frozen.waitFor();
    await expect(frozen.locator('code').count()).resolves.toBeGreaterThan(0);
    await expectAccessible('policies');
    // Publishing it is refused: the library's own tests fail under it.
    await page.getByRole('textbox', { name: 'Reason for publishing' }).fill('freeze for the audit');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('status', { name: 'Policy changes' }).getByText(/test/).waitFor();
    expect(((await (await demo.get('/admin/v1/policies', dave)).json()) as { version: string }).version).toBe(
      before.version,
    );
    // A harmless change publishes, with the reason in the trail.
    await text.fill(`// reviewed with the platform team\n${original}`);
    await page.getByRole('button', { name: 'Publish' }).click();
    await page
      .getByRole('status', { name: 'Policy changes' })
      .getByText(new RegExp(`^Published \\w+ \\(was ${before.version}\\)`))
      .waitFor();
    const published = async () =>
      ((await (await demo.get('/admin/v1/policies', dave)).json()) as { version: string }).version;
    await expect.poll(published).not.toBe(before.version);
    await expect.poll(() => page.getByTestId('policy-version').textContent()).toBe(await published());
  }, 60_000);

  it('admin: the offboarding wizard shows what will happen to rita before it happens, then does it', async () => {
    const { page } = browser;
    const dave = await demo.accessToken('dave', 'console', 'admin');
    // The dry run is admin only, audited, and changes nothing.
    const rita = await demo.accessToken('rita', 'console', 'maker review');
    const refused = await demo.send('POST', '/admin/v1/offboard/preview', rita, {
      json: { user: 'rita@example.com' },
    });
    expect(refused.status).toBe(403);
    await signIn('dave');
    await page.getByRole('link', { name: 'Offboarding' }).click();
    await page.getByRole('textbox', { name: 'Email of the person leaving' }).fill('rita@example.com');
    await page.getByRole('button', { name: 'Show what will happen' }).click();
    const preview = page.getByTestId('offboard-preview');
    const owned = preview.getByRole('table', { name: 'Apps they own' });
    await owned.getByRole('row', { name: /rita-notes .* suspended/ }).waitFor();
    await expect(preview.textContent()).resolves.toContain(
      'Every token of app rita-notes, user rita@example.com',
    );
    expect(
      ((await (await demo.get('/admin/v1/apps/rita-notes', dave)).json()) as { state: string }).state,
    ).toBe('in_review');
    await expectAccessible('offboard');
    await page.getByRole('textbox', { name: 'Reason for offboarding' }).fill('rita moved to another company');
    await page.getByRole('button', { name: 'Offboard rita@example.com' }).click();
    await page
      .getByRole('status', { name: 'Offboarding' })
      .getByText('rita@example.com is offboarded')
      .waitFor();
    await expect
      .poll(
        async () =>
          ((await (await demo.get('/admin/v1/apps/rita-notes', dave)).json()) as { state: string }).state,
      )
      .toBe('suspended');
    expect((await demo.get('/admin/v1/me', rita)).status).toBe(401);
    const [refusal] = await auditEventsOf(
      demo,
      await demo.accessToken('carol', 'console', 'audit:read'),
      requestIdOf(refused),
    );
    expect(refusal?.event).toMatchObject({ action: 'admin.offboard.preview', outcome: 'deny' });
  }, 60_000);

  it('admin: dave rotates early, then revokes the signing key in the keys view; a fresh key signs and the old tokens are refused', async () => {
    const { page } = browser;
    const old = await demo.accessToken('bob', 'call-notes', 'read:account.basic');
    expect((await demo.get('/crm/v1/accounts?limit=1', old)).status).toBe(200);
    await signIn('dave');
    await page.getByRole('link', { name: 'Signing keys' }).click();
    const signing = page.locator('tr[data-state="signing"]');
    await signing.waitFor();
    const kid = (await signing.getAttribute('data-kid')) ?? '';
    await expectAccessible('keys');
    const reason = page.getByRole('textbox', { name: 'Reason for the key change' });
    await reason.fill('quarterly rotation, ahead of the schedule');
    await page.getByRole('button', { name: 'Rotate now' }).click();
    await page
      .getByRole('status', { name: 'Key changes' })
      .getByText(/published; it signs once/)
      .waitFor();
    await page.locator('tr[data-state="published"]').first().waitFor();
    // A rotation is not a revocation: the signing key's tokens still work.
    expect((await demo.get('/crm/v1/accounts?limit=1', old)).status).toBe(200);
    await reason.fill('key file seen in a backup');
    await page.getByRole('button', { name: `Revoke key ${kid.slice(0, 8)}` }).click();
    await page
      .getByRole('status', { name: 'Key changes' })
      .getByText(/revoked; \S+ signs now/)
      .waitFor();
    // The console's own session carries on: its refresh token gets an access token from the new key.
    await expect.poll(() => page.locator('tr[data-state="signing"]').getAttribute('data-kid')).not.toBe(kid);
    await expect.poll(async () => (await demo.get('/crm/v1/accounts?limit=1', old)).status).toBe(401);
  }, 60_000);
});
