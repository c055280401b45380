import { describe, expect, it } from 'vitest';
import { detectSchema, type DetectConfig } from '../config/index.js';
import { replay, rulesFrom } from './rules/index.js';
import { firedThisHour, observeVolume, volumeThreshold } from './rules/baseline.js';
import { sensitiveFirstAccess } from './rules/first-access.js';
import { massExport } from './rules/mass-export.js';
import { newNetwork } from './rules/new-network.js';
import { offHoursBulk } from './rules/off-hours.js';
import { rateAnomaly } from './rules/rate-anomaly.js';
import { secondsOf } from './rules/window.js';
import { eventOf, normalTraffic, numbered, syntheticWorkingHours, type EventShape } from './synthetic.js';
import { ruleIds, type Detection, type Observed, type RuleId } from './types.js';

const monday = Date.UTC(2025, 2, 3) / 1000; // 2025-03-03 00:00 UTC
const day = 86_400;
const config: DetectConfig = detectSchema.parse({ workingHours: { users: syntheticWorkingHours() } });
const normal = normalTraffic(monday, 14);
const history = numbered(normal);
const weekTwo = history.findIndex((o) => Date.parse(o.event.timestamp) / 1000 >= monday + 7 * day);

function countByRule(detections: readonly Detection[]): Record<RuleId, number> {
  const counts = Object.fromEntries(ruleIds.map((id) => [id, 0])) as Record<RuleId, number>;
  for (const d of detections) counts[d.rule] += 1;
  return counts;
}

const rules = rulesFrom(config);
const learned = replay(rules, history);

/** Detections of the attack, after two normal weeks (rules continue from the states the weeks left). */
function afterHistory(attack: EventShape[]): Detection[] {
  return replay(rules, numbered(attack.map(eventOf), history.length), learned.states).detections;
}

const attackDay = monday + 14 * day; // Monday of the third week

/** The rules that fired, in order of their first detection (a rule fires on every event past its threshold). */
const rulesOf = (found: readonly Detection[]) => [...new Set(found.map((d) => d.rule))];

/**
 * False alarms the measured week may raise, and why: people who work from home for the first time since
 * the rule began learning are new networks (severity low, alert only). Every other rule: none.
 */
const acceptedFalseAlarms: Partial<Record<RuleId, number>> = { new_network: 3 };

describe('a normal fortnight of synthetic traffic', () => {
  const detections = learned.detections;
  const inWeek = (week: number) =>
    detections.filter((d) => {
      const t = Date.parse(d.at) / 1000;
      return t >= monday + week * 7 * day && t < monday + (week + 1) * 7 * day;
    });

  it('raises no alarm in the measured week, once the rules have learned the first', () => {
    const learning = countByRule(inWeek(0));
    const measured = countByRule(inWeek(1));
    // The measured figures go in the issue note: events, and false alarms per rule.
    console.log(
      `normal traffic: ${history.length} events over 14 days (${history.length - weekTwo} in the measured week)\n` +
        `false alarms, learning week: ${JSON.stringify(learning)}\n` +
        `false alarms, measured week: ${JSON.stringify(measured)}`,
    );
    expect(history.length - weekTwo).toBeGreaterThan(15_000);
    for (const rule of ruleIds)
      expect(measured[rule], rule).toBeLessThanOrEqual(acceptedFalseAlarms[rule] ?? 0);
  });

  it('is the same on a second run: rules are pure functions of the events', () => {
    expect(replay(rulesFrom(config), history).detections).toEqual(detections);
  });
});

describe('each rule fires on its attack', () => {
  it('mass_export: an app pages through 3,000 contacts in five minutes', () => {
    const attack = Array.from({ length: 30 }, (_, i) => ({
      at: attackDay + 14 * 3600 + i * 10,
      actor: 'alice@example.com',
      app: 'call-notes',
      action: 'crm.list',
      object: 'contact',
      fields: 'email,first_name,last_name,phone',
      records: 100,
      network: '10.1.2.0/24',
    }));
    const found = afterHistory(attack);
    expect(rulesOf(found)).toEqual(['mass_export']);
    expect(found[0]).toMatchObject({ actor: 'alice@example.com', app: 'call-notes', severity: 'high' });
    expect(found[0].evidence.every((i) => i >= history.length)).toBe(true);
  });

  it('mass_export: the bulk-export guard refused a read', () => {
    const found = afterHistory([
      {
        at: attackDay + 11 * 3600,
        actor: 'bob@example.com',
        app: 'call-notes',
        action: 'bulk_export',
        outcome: 'deny',
        reason:
          'guard=bulk_export_guard object=contact sensitive=true threshold=50 distinct=40 attempted=80 table_size=2000 window_seconds=3600',
      },
    ]);
    expect(found.map((d) => d.rule)).toEqual(['mass_export']);
    expect(found[0].summary).toContain('80 distinct records in 3600s against a threshold of 50 of 2000');
  });

  it('off_hours_bulk: erin reads 300 contacts at 03:00 in New York', () => {
    const attack = Array.from({ length: 6 }, (_, i) => ({
      at: attackDay + 8 * 3600 + i * 60, // 08:00 UTC = 03:00 EST
      actor: 'erin@example.com',
      app: 'call-notes',
      action: 'crm.list',
      object: 'contact',
      fields: 'first_name,last_name',
      records: 50,
      network: '10.20.0.0/24',
    }));
    const found = afterHistory(attack);
    expect(rulesOf(found)).toEqual(['off_hours_bulk']);
    expect(found[0].summary).toContain('America/New_York');
  });

  it('rate_anomaly: pipeline-dashboard makes 1,500 requests in an hour, against its baseline of a few', () => {
    const attack = Array.from({ length: 1500 }, (_, i) => ({
      at: attackDay + 15 * 3600 + i * 2,
      actor: 'bob@example.com',
      role: 'sales_manager',
      app: 'pipeline-dashboard',
      action: 'crm.aggregate',
      object: 'opportunity',
      fields: 'amount,stage',
      network: '10.1.2.0/24',
    }));
    const found = afterHistory(attack);
    // App-wide (the app's own baseline) and aimed at bob (his baseline in the app).
    expect(found.map((d) => [d.rule, d.scope])).toEqual([
      ['rate_anomaly', 'app'],
      ['rate_anomaly', 'actor'],
    ]);
    expect(found[0].app).toBe('pipeline-dashboard');
  });

  it('rate_anomaly: 330 requests in an hour are an anomaly for the quiet app, not for the busy one (only for the user in it)', () => {
    const burst = (app: string, object: string, fields: string) =>
      Array.from({ length: 330 }, (_, i) => ({
        at: attackDay + 10 * 3600 + i * 10,
        actor: 'bob@example.com',
        role: 'sales_manager',
        app,
        action: 'crm.read',
        object,
        fields,
        records: 1,
        network: '10.1.2.0/24',
      }));
    // call-notes is busy (no app-wide anomaly), but bob never makes 330 requests an hour in it.
    expect(
      afterHistory(burst('call-notes', 'contact', 'email,first_name,last_name,phone')).map((d) => d.scope),
    ).toEqual(['actor']);
    expect(
      afterHistory(burst('pipeline-dashboard', 'opportunity', 'amount,name,stage')).map((d) => d.scope),
    ).toEqual(['app', 'actor']);
  });

  it('denial_burst: a token probes 40 record ids in a minute', () => {
    const attack = Array.from({ length: 40 }, (_, i) => ({
      at: attackDay + 13 * 3600 + i,
      actor: 'frank@example.com',
      app: 'call-notes',
      action: 'crm.read',
      outcome: 'deny' as const,
      reason: 'NOT_FOUND',
      network: '10.1.2.0/24',
    }));
    const found = afterHistory(attack);
    expect(rulesOf(found)).toEqual(['denial_burst']);
    expect(found[0].actor).toBe('frank@example.com');
  });

  it('denial_burst: requests without a token are grouped by network', () => {
    const attack = Array.from({ length: 25 }, (_, i) => ({
      at: attackDay + 13 * 3600 + i,
      actor: 'anonymous',
      app: 'unknown',
      action: 'crm.list',
      outcome: 'deny' as const,
      reason: 'TOKEN_INVALID',
      network: '198.51.100.0/24',
    }));
    const found = afterHistory(attack);
    expect(rulesOf(found)).toEqual(['denial_burst']);
    expect(found[0].actor).toBe('network 198.51.100.0/24');
  });

  it('credential_stuffing: refused grants at the token endpoint count per network, whoever asks (a user spraying the broker)', () => {
    const attack = Array.from({ length: 25 }, (_, i) => ({
      at: attackDay + 13 * 3600 + i,
      actor: 'mallory@example.com',
      app: 'call-notes',
      action: 'token.grant',
      outcome: 'deny' as const,
      reason: 'OAUTH_INVALID_SCOPE: a scope asked for was never approved for the app',
      network: '198.51.100.0/24',
    }));
    const found = afterHistory(attack);
    // new_network may fire too: a user nobody has seen, from a network nobody has seen.
    expect(found.find((d) => d.rule === 'credential_stuffing')).toMatchObject({
      actor: 'network 198.51.100.0/24',
      app: 'call-notes',
      scope: 'actor',
      severity: 'high',
    });
    expect(rulesOf(found)).not.toContain('denial_burst');
  });

  it('credential_stuffing: many networks guessing at one client are app-wide; the endpoint limit refusing is not a guess', () => {
    const guess = (i: number, reason: string) => ({
      at: attackDay + 13 * 3600 + i / 10,
      actor: 'anonymous',
      app: 'call-notes',
      action: 'token.grant',
      outcome: 'deny' as const,
      reason,
      network: `203.0.${i % 250}.0/24`,
    });
    const invalid = 'OAUTH_INVALID_GRANT: the subject token is not a valid ID token for Gatehouse';
    const spread = afterHistory(Array.from({ length: 200 }, (_, i) => guess(i, invalid)));
    expect(spread.filter((d) => d.rule === 'credential_stuffing')).toMatchObject([
      { actor: 'client call-notes', app: 'call-notes', scope: 'app' },
    ]);
    const limited = afterHistory(
      Array.from({ length: 300 }, (_, i) => ({ ...guess(i, 'RATE_LIMITED'), network: '203.0.113.0/24' })),
    );
    expect(rulesOf(limited)).not.toContain('credential_stuffing');
  });

  it('refresh_token_reuse: the broker revoked a family for reuse', () => {
    const found = afterHistory([
      {
        at: attackDay + 9 * 3600,
        actor: 'grace@example.com',
        app: 'call-notes',
        action: 'token.family_revoked',
        outcome: 'deny',
        reason: 'refresh token reused',
      },
    ]);
    expect(found).toMatchObject([
      { rule: 'refresh_token_reuse', actor: 'grace@example.com', severity: 'high' },
    ]);
  });

  it('sensitive_first_access: pipeline-dashboard reads national ids for the first time', () => {
    const found = afterHistory([
      {
        at: attackDay + 10 * 3600,
        actor: 'bob@example.com',
        app: 'pipeline-dashboard',
        action: 'crm.read',
        object: 'contact',
        fields: 'first_name,national_id',
        records: 1,
        network: '10.1.2.0/24',
      },
    ]);
    expect(found).toMatchObject([{ rule: 'sensitive_first_access', app: 'pipeline-dashboard' }]);
    expect(found[0].summary).toContain('pii fields of contact');
  });

  it('new_network: alice calls from a network she has never used', () => {
    const found = afterHistory([
      {
        at: attackDay + 10 * 3600,
        actor: 'alice@example.com',
        app: 'call-notes',
        action: 'crm.read',
        object: 'contact',
        fields: 'first_name',
        records: 1,
        network: '203.0.113.0/24',
      },
    ]);
    expect(found).toMatchObject([{ rule: 'new_network', actor: 'alice@example.com' }]);
  });
});

describe('rules as pure functions', () => {
  const deepFreeze = <T>(value: T): T => {
    if (typeof value === 'object' && value !== null) {
      for (const child of Object.values(value)) deepFreeze(child);
      Object.freeze(value);
    }
    return value;
  };

  it('never change the state they are given (every rule, every event of a day)', () => {
    for (const rule of rulesFrom(config)) {
      let state = deepFreeze(rule.initial());
      for (const observed of history.slice(0, 3000)) {
        state = deepFreeze(rule.step(state, observed).state);
      }
      expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    }
  });

  it('ignore events whose timestamp is not a time', () => {
    const junk: Observed = {
      index: 0,
      event: {
        ...eventOf({ at: 0, actor: 'a', app: 'b', action: 'crm.list', records: 9999 }),
        timestamp: 'yesterday',
      },
    };
    for (const rule of rulesFrom(config)) {
      expect(rule.step(rule.initial(), junk).detections).toEqual([]);
    }
  });

  it("read an event's time from its timestamp, even when the same object comes back changed", () => {
    const event = eventOf({ at: 3600, actor: 'a', app: 'b', action: 'crm.list', records: 1 });
    expect(secondsOf(event)).toBe(3600);
    expect(secondsOf(event)).toBe(3600);
    const moved = event as { timestamp: string };
    moved.timestamp = new Date(7200 * 1000).toISOString();
    expect(secondsOf(event)).toBe(7200);
    expect(secondsOf({ ...event, timestamp: 'yesterday' })).toBeNaN();
  });
});

describe('rate_anomaly baselines and warm-up', () => {
  const options = {
    ...config.rules.rate_anomaly,
    minSamples: 3,
    minRequests: 50,
    ceiling: 1000,
    userCeiling: 400,
  };
  const rule = rateAnomaly(options);
  const hour = (h: number, n: number, actor = 'alice@example.com') =>
    Array.from({ length: n }, (_, i) =>
      eventOf({
        at: monday + h * 3600 + Math.floor((i * 3600) / Math.max(n, 1)),
        actor,
        app: 'call-notes',
        action: 'crm.read',
        object: 'contact',
        records: 1,
      }),
    );
  const run = (events: ReturnType<typeof hour>) => replay([rule as never], numbered(events)).detections;

  it('in warm-up (fewer than minSamples days of the hour) only the fixed ceiling fires, for the app and the user', () => {
    // Day one: nothing learned yet. 399 requests by one user stay quiet; 401 pass the user ceiling.
    expect(run(hour(10, 399))).toEqual([]);
    expect(run(hour(10, 401)).map((d) => d.scope)).toEqual(['actor']);
    // Spread over many users, the app ceiling (1000) is what fires: app-wide.
    const many = Array.from({ length: 6 }, (_, u) => hour(10, 180, `rep${u}@example.com`)).flat();
    many.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
    expect(run(many).map((d) => d.scope)).toEqual(['app']);
  });

  it('after warm-up, each user and the app are compared with their own EWMA for the hour', () => {
    // Three weekdays of 40 requests at 10:00 by alice, then 300 on the fourth: 7.5× her baseline of 40.
    const learned = [0, 1, 2].flatMap((d) => hour(d * 24 + 10, 40));
    expect(run([...learned, ...hour(3 * 24 + 10, 190)])).toEqual([]); // under 5 × 40 = 200
    const found = run([...learned, ...hour(3 * 24 + 10, 300)]);
    expect(found.map((d) => d.scope)).toEqual(['app', 'actor']);
    expect(found[1].summary).toMatch(/baseline for this hour of a weekday is 40\.0 \(threshold 200\)/);
  });

  it('the ceiling caps a high baseline: a user whose baseline is already large still fires above it', () => {
    const learned = [0, 1, 2].flatMap((d) => hour(d * 24 + 10, 150));
    // 5 × 150 = 750 would be the baseline threshold; the user ceiling of 400 caps it.
    expect(run([...learned, ...hour(3 * 24 + 10, 401)]).map((d) => d.scope)).toEqual(['actor']);
  });
});

describe('volume baselines (mass_export, off_hours_bulk): the pure decisions', () => {
  const scopes = (found: readonly Detection[]) => [...new Set(found.map((d) => d.scope))];
  const limits = { factor: 3, minSamples: 2, floor: 2000, ceiling: 50_000, warmUp: 'floor' as const };

  it('learns an EWMA of records per active hour as each hour closes; idle hours and fired hours teach nothing', () => {
    let b = observeVolume(undefined, 10 * 3600, 900, 0.5);
    b = observeVolume(b, 10 * 3600 + 60, 100, 0.5); // same hour: counted
    expect(b).toMatchObject({ hour: 10, count: 1000, samples: 0 });
    b = observeVolume(b, 15 * 3600, 500, 0.5); // hours 11-14 idle: hour 10 learned, nothing else
    expect(b).toMatchObject({ hour: 15, count: 500, mean: 1000, samples: 1 });
    b = observeVolume(firedThisHour(b), 16 * 3600, 10, 0.5); // hour 15 fired: not learned
    expect(b).toMatchObject({ mean: 1000, samples: 1 });
    b = observeVolume(b, 17 * 3600, 0, 0.5);
    expect(b).toMatchObject({ mean: 0.5 * 10 + 0.5 * 1000, samples: 2 });
    // A late event is counted in the current hour.
    expect(observeVolume(b, 3 * 3600, 7, 0.5)).toMatchObject({ hour: 17, count: 7 });
  });

  it('in warm-up: the static floor (a user), or only the ceiling (an app); after: factor × baseline within floor and ceiling', () => {
    expect(volumeThreshold(limits, undefined).threshold).toBe(2000);
    expect(volumeThreshold({ ...limits, warmUp: 'ceiling' }, undefined).threshold).toBe(50_000);
    const learned = (mean: number) => ({ hour: 1, count: 0, fired: false, mean, samples: 2 });
    expect(volumeThreshold(limits, learned(100)).threshold).toBe(2000); // 300 < floor
    expect(volumeThreshold(limits, learned(1500))).toMatchObject({ threshold: 4500 });
    expect(volumeThreshold(limits, learned(1500)).of).toMatch(
      /3 × a baseline of 1500 records per active hour/,
    );
    expect(volumeThreshold(limits, learned(40_000)).threshold).toBe(50_000); // the ceiling caps it
  });

  const reads = (hourOffset: number, records: number, actor = 'heavy@example.com', minute = 0) =>
    eventOf({
      at: monday + hourOffset * 3600 + minute * 60,
      actor,
      app: 'call-notes',
      action: 'crm.list',
      object: 'contact',
      records,
    });
  /** `perHour` records in ten reads within 10 minutes, at 10:00 UTC on `days` weekdays. */
  const heavyDays = (days: number, perHour: number) =>
    Array.from({ length: days }, (_, d) =>
      Array.from({ length: 10 }, (_, i) => reads(d * 24 + 10, perHour / 10, 'heavy@example.com', i)),
    ).flat();

  it('mass_export: a heavy reader, once learned, is not an anomaly at her usual volume; three times it is', () => {
    const rule = rulesFrom(detectSchema.parse({})).find((r) => r.id === 'mass_export')!;
    const run = (events: ReturnType<typeof reads>[]) => replay([rule], numbered(events)).detections;
    // Warm-up (fewer than 8 active hours learned): the static 2,000 in 10 minutes applies.
    expect(scopes(run(heavyDays(1, 2500)))).toEqual(['actor']);
    // Eight days at 1,800 an hour learned: 2,500 in 10 minutes is within 3 × 1,800; 6,000 is not.
    const history = heavyDays(8, 1800);
    const usual = [...history, ...heavyDays(9, 2500).slice(-10)];
    expect(run(usual)).toEqual([]);
    const deviation = [...history, ...heavyDays(9, 6000).slice(-10)];
    const found = run(deviation);
    expect(scopes(found)).toEqual(['actor']);
    expect(found[0].summary).toMatch(/threshold 5400: 3 × a baseline of 1800 records per active hour/);
    // Another user, never seen, is still held to the static floor.
    const newcomer = Array.from({ length: 5 }, (_, i) => reads(8 * 24 + 10, 500, 'new@example.com', i));
    expect([...new Set(run([...history, ...newcomer]).map((d) => d.actor))]).toEqual(['new@example.com']);
  });

  it('mass_export: an app is never judged by a flat count in warm-up (only the ceiling), then by its own baseline', () => {
    const options = {
      ...detectSchema.parse({}).rules.mass_export,
      maxRecords: 100_000,
      appMinRecords: 1000,
      appCeiling: 30_000,
      minSamples: 2,
    };
    const rule = massExport(options);
    const run = (events: ReturnType<typeof reads>[]) => replay([rule as never], numbered(events)).detections;
    // Many users reading 2,000 each through the app in an hour: 20,000 is under the app ceiling.
    const users = (h: number, each: number) =>
      Array.from({ length: 10 }, (_, u) => reads(h, each, `rep${u}@example.com`, u));
    expect(run(users(10, 2000))).toEqual([]);
    // Learned at 500 an hour for two days; 10 × 500 = 5,000 in ten minutes is 10× its baseline.
    const learned = [...users(10, 50), ...users(34, 50)];
    expect(run([...learned, ...users(58, 100)])).toEqual([]); // 1,000 = its floor
    expect(scopes(run([...learned, ...users(58, 500)]))).toEqual(['app']);
  });

  it('off_hours_bulk: someone who always reads 400 records in the evening is judged by her evenings; a night of 2,000 fires', () => {
    const hours = detectSchema.parse({}).workingHours; // UTC, weekdays 08:00-18:00
    const rule = offHoursBulk({ ...detectSchema.parse({}).rules.off_hours_bulk, minSamples: 3 }, hours);
    const run = (events: ReturnType<typeof reads>[]) => replay([rule as never], numbered(events)).detections;
    const evening = (d: number, total: number) =>
      Array.from({ length: 4 }, (_, i) => reads(d * 24 + 20, total / 4, 'late@example.com', i * 10));
    const days = (found: Detection[]) => [...new Set(found.map((d) => d.at.slice(0, 10)))];
    // Warm-up: 400 in the evening passes the static 300, so each of the first three evenings fires
    // (and is learned all the same).
    const learned = [0, 1, 2].flatMap((d) => evening(d, 400));
    expect(days(run(learned))).toEqual(['2025-03-03', '2025-03-04', '2025-03-05']);
    // Learned: 400 is her usual evening now; 2,000 is five times it.
    expect(days(run([...learned, ...evening(3, 400)]))).toHaveLength(3);
    const found = run([...learned, ...evening(3, 2000)]);
    expect(days(found)).toHaveLength(4);
    expect(found.at(-1)?.summary).toMatch(/threshold 1200: 3 × a baseline of 400 records per active hour/);
  });
});

describe('learning periods (new_network, sensitive_first_access): warm-up, then the learned set', () => {
  const options = detectSchema.parse({}).rules;
  const call = (at: number, network: string, fields = 'first_name', object = 'contact') =>
    eventOf({
      at,
      actor: 'alice@example.com',
      app: 'call-notes',
      action: 'crm.read',
      object,
      fields,
      records: 1,
      network,
    });

  it('new_network: in her first learnSeconds every network is learned; after, an unseen one fires and a known one does not', () => {
    const rule = newNetwork({ ...options.new_network, learnSeconds: day });
    const run = (events: ReturnType<typeof call>[]) => replay([rule as never], numbered(events)).detections;
    const learning = [call(monday, '10.1.1.0/24'), call(monday + 3600, '10.2.2.0/24')];
    expect(run(learning)).toEqual([]);
    expect(run([...learning, call(monday + 2 * day, '10.2.2.0/24')])).toEqual([]);
    const found = run([...learning, call(monday + 2 * day, '10.3.3.0/24')]);
    expect(found.map((d) => d.summary)).toEqual([
      expect.stringMatching(/from 10\.3\.3\.0\/24, a network not seen/),
    ]);
  });

  it('sensitive_first_access: an app learns the classes it reads for learnSeconds; after, a new class fires once', () => {
    const rule = sensitiveFirstAccess({ ...options.sensitive_first_access, learnSeconds: day });
    const run = (events: ReturnType<typeof call>[]) => replay([rule as never], numbered(events)).detections;
    const learning = [call(monday, '10.1.1.0/24'), call(monday + 3600, '10.1.1.0/24', 'first_name,email')];
    expect(run(learning)).toEqual([]);
    expect(run([...learning, call(monday + 2 * day, '10.1.1.0/24', 'email')])).toEqual([]);
    const later = [
      call(monday + 2 * day, '10.1.1.0/24', 'annual_revenue', 'account'),
      call(monday + 2 * day + 60, '10.1.1.0/24', 'annual_revenue', 'account'),
    ];
    expect(run([...learning, ...later]).map((d) => d.summary)).toEqual([
      expect.stringMatching(/call-notes read financial fields of account for the first time/),
    ]);
  });
});
