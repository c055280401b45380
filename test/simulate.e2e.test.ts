import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SimulationSummary } from '../src/detect/index.js';
import { gatehouse, gatehouseAsync } from './support/cli.js';

/**
 * `gatehouse simulate` through the real CLI: a real Gatehouse started in the command on the simulator's
 * clock, synthetic users signed in through the dev IdP and the token exchange, every request over
 * loopback HTTP.
 */

/** A summary without what differs between runs by design: incident ids and wall time. */
function figures(summary: SimulationSummary) {
  return {
    ...summary,
    wall_seconds: undefined,
    speed: undefined,
    attacks: summary.attacks.map((a) => ({ ...a, incidents: a.incidents.length })),
    incidents: summary.incidents.map((i) => ({ ...i, id: undefined })),
  };
}

const shortRun = ['--seed', '18', '--users', '30', '--minutes', '6', '--contacts', '2000'];
describe('gatehouse simulate', () => {
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-simulate-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  let first: SimulationSummary;

  it('a short seeded scenario: each simulated attack is detected and contained, and no ordinary user or app is', async () => {
    const result = await gatehouseAsync(['simulate', ...shortRun, '--out', out, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as SimulationSummary;
    first = summary;
    expect(summary.clock).toBe('simulated');
    const attack = (kind: string) => summary.attacks.find((a) => a.kind === kind);

    expect(summary.ordinary.requests).toBeGreaterThan(50);
    expect(summary.ordinary.false_containments).toBe(0);
    expect(summary.ordinary.refused_share).toBeLessThan(0.001);
    for (const kind of [
      'whole_table_export',
      'split_export',
      'slow_export',
      'off_hours_bulk',
      'credential_stuffing',
      'stolen_refresh_token',
      'compromised_app',
    ]) {
      expect(attack(kind), kind).toMatchObject({ simulated: true, detected: true, contained: true });
    }
    // Exports stop at the user's budget (200 distinct contacts a day here), however they are split over
    // tokens and apps: records_read counts distinct records, re-read pages add nothing.
    for (const kind of ['whole_table_export', 'split_export', 'slow_export']) {
      expect(attack(kind)?.records_read, kind).toBeLessThanOrEqual(200);
      expect(attack(kind)?.records_returned, kind).toBeGreaterThanOrEqual(attack(kind)?.records_read ?? 0);
    }
    // The compromised app is contained as an app; the users it acted for are not.
    expect(attack('compromised_app')?.containment).toEqual(
      expect.arrayContaining(['suspend_app app:lead-sync']),
    );
    // Guessing at /oauth/token from one network: that network is throttled there (429), not the app.
    const stuffing = attack('credential_stuffing');
    expect(stuffing?.rules).toEqual(['credential_stuffing']);
    expect(stuffing?.containment).toEqual(['throttle_network network:203.0.113.0/24']);
    expect(stuffing?.refused_by_code['call-notes RATE_LIMITED']).toBeGreaterThan(0);
    // The replayed refresh token revokes the sign-in (the owner's fresh token too) and the user's tokens.
    const stolen = attack('stolen_refresh_token');
    expect(stolen?.rules).toEqual(['refresh_token_reuse']);
    expect(stolen?.refused_by_code).toEqual({ 'call-notes invalid_grant': 1, 'call-notes TOKEN_REVOKED': 1 });
    expect(stolen?.containment).toEqual(['revoke_user_tokens user:robin5@example.com']);

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<canvas id="records">');
    expect(html).toMatch(/Chart\.js v4/);
    expect(html).not.toMatch(/ghr_|"access_token"/);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toEqual(summary);
  }, 120_000);

  it('the same seed gives the same figures: every request, refusal, detection and containment at the same simulated time', async () => {
    expect(first, 'the first run failed').toBeDefined();
    const again = mkdtempSync(join(tmpdir(), 'gatehouse-simulate-test-'));
    try {
      const result = await gatehouseAsync(['simulate', ...shortRun, '--out', again, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const second = JSON.parse(result.stdout) as SimulationSummary;
      expect(figures(second)).toEqual(figures(first));
      // Detection and containment times are simulated ms from each attack's first request.
      expect(second.attacks.every((a) => a.detection_ms !== null)).toBe(true);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  }, 120_000);

  it('has --help, and refuses an unknown attack kind in one line', () => {
    const help = gatehouse(['simulate', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--seed <n>');
    const bad = gatehouse(['simulate', '--attacks', 'teleport', '--out', out]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--attacks: unknown kind teleport');
  });
});
