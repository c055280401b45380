/**
 * The simulated day as data: synthetic users (roles, territories, time zones), the apps they use, and
 * every request they will make, ordinary or a labelled attack. Pure and seeded: the same seed and
 * options give the same scenario, so a run can be repeated and a regression pinned.
 */
import { isWorkingTime } from '../hours.js';

export const attackKinds = [
  'whole_table_export',
  'split_export',
  'slow_export',
  'off_hours_bulk',
  'credential_stuffing',
  'stolen_refresh_token',
  'compromised_app',
] as const;
export type AttackKind = (typeof attackKinds)[number];

export type Role = 'sales_rep' | 'sales_manager' | 'auditor';
export type Territory = 'EMEA' | 'NA' | 'APAC';

export interface SimUser {
  /** The dev IdP's user name (the token's subject). */
  readonly name: string;
  readonly email: string;
  readonly role: Role;
  readonly territory: Territory;
  readonly timeZone: string;
}

/** What one step does, through which app; each kind is one or more real requests. */
export type StepKind =
  | 'contacts' // list pages of contacts (call notes on one's accounts)
  | 'accounts' // list one's accounts
  | 'pipeline' // aggregate the pipeline (dashboard)
  | 'audit' // read the audit trail
  | 'bad_exchange' // a token exchange with a forged subject token
  | 'stolen_refresh'; // a browser sign-in, the owner's refresh, then a thief's replay of the old token

export interface Step {
  /** Milliseconds of simulated time from the start. */
  readonly at: number;
  readonly user: string;
  readonly app: string;
  readonly kind: StepKind;
  readonly pages: number;
  readonly pageSize: number;
  /** Which of the user's tokens for the app (an attacker spreads over several). */
  readonly token: number;
  readonly attack?: AttackKind;
}

export interface Attack {
  readonly kind: AttackKind;
  /** Users whose requests are the attack (the attacker, or the users a compromised app acts for). */
  readonly actors: readonly string[];
  readonly apps: readonly string[];
  /** Simulated ms at which it starts. */
  readonly at: number;
  readonly description: string;
  /** Whether the simulator can drive it; when not, `note` says why and the summary reports it so. */
  readonly simulated: boolean;
  readonly note?: string;
}

/** An app the simulator registers for the run (the split export's second app, the compromised app). */
export interface SimApp {
  readonly id: string;
  readonly scopes: readonly string[];
  readonly expectedUsers: number;
  readonly expectedReads: Readonly<Record<string, number>>;
}

export interface Scenario {
  readonly seed: number;
  readonly durationMs: number;
  readonly users: readonly SimUser[];
  readonly apps: readonly SimApp[];
  readonly steps: readonly Step[];
  readonly attacks: readonly Attack[];
}

export interface ScenarioOptions {
  readonly seed: number;
  /** Ordinary users (the attackers come on top). */
  readonly users: number;
  /** Simulated minutes the scenario spans. */
  readonly minutes: number;
  /** Attack kinds to inject; all by default. */
  readonly attacks?: readonly AttackKind[];
  /** The off-hours attacker's time zone: one where the run happens at night (the runner picks it). */
  readonly nightZone: string;
  /**
   * When the span starts (ms since the epoch). Given, a span of a day or more puts each user's sessions
   * in their own working hours (weekdays 08:00-18:00 in their zone), day after day.
   */
  readonly startMs?: number;
}

const dayMs = 86_400_000;

export const contactScopes = 'read:account.basic read:contact.basic read:contact.reach';
const dayZones: Record<Territory, readonly string[]> = {
  EMEA: ['Europe/London', 'Europe/Berlin', 'Europe/Madrid'],
  NA: ['America/New_York', 'America/Chicago', 'America/Los_Angeles'],
  APAC: ['Asia/Singapore', 'Australia/Sydney', 'Asia/Tokyo'],
};

/** mulberry32: small, fast, and the same sequence on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` session times (ms from the start) for one user: within their working hours on long spans. */
function sessionTimes(
  options: ScenarioOptions,
  user: SimUser,
  count: number,
  random: () => number,
): number[] {
  const durationMs = options.minutes * 60_000;
  const anywhere = () => Math.floor(random() * durationMs * 0.9);
  if (options.startMs === undefined || durationMs < dayMs) return Array.from({ length: count }, anywhere);
  const hours = { timeZone: user.timeZone, days: workdays, start: '08:00', end: '18:00' };
  const times: number[] = [];
  // A few draws each: the working hours of a zone are a third of a weekday, and weekends have none.
  for (let tries = 0; times.length < count && tries < count * 12; tries++) {
    const at = anywhere();
    if (isWorkingTime(hours, (options.startMs + at) / 1000)) times.push(at);
  }
  return times;
}

const workdays = ['mon', 'tue', 'wed', 'thu', 'fri'] as const;

export function buildScenario(options: ScenarioOptions): Scenario {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const durationMs = options.minutes * 60_000;
  const territories: Territory[] = ['EMEA', 'NA', 'APAC'];
  const users: SimUser[] = [];
  for (let i = 0; i < options.users; i++) {
    const draw = random();
    const role: Role = draw < 0.8 ? 'sales_rep' : draw < 0.95 ? 'sales_manager' : 'auditor';
    const territory = pick(territories);
    const name = `sim${String(i).padStart(4, '0')}`;
    users.push({ name, email: `${name}@example.com`, role, territory, timeZone: pick(dayZones[territory]) });
  }
  const steps: Step[] = [];
  const days = Math.max(1, Math.round(durationMs / dayMs));
  for (const user of users) {
    // A few sessions a day each: reps look at their accounts and contacts before calls, managers at
    // the pipeline, auditors at the trail.
    const sessions = (1 + Math.floor(random() * 3)) * days;
    for (const at of sessionTimes(options, user, sessions, random)) {
      const base = { at, user: user.name, token: 0 };
      if (user.role === 'sales_rep') {
        steps.push({ ...base, app: 'call-notes', kind: 'accounts', pages: 1, pageSize: 20 });
        steps.push({
          ...base,
          at: base.at + 2000,
          app: 'call-notes',
          kind: 'contacts',
          pages: 1 + Math.floor(random() * 2),
          pageSize: 25,
        });
      } else if (user.role === 'sales_manager') {
        steps.push({ ...base, app: 'pipeline-dashboard', kind: 'pipeline', pages: 2, pageSize: 1 });
      } else {
        steps.push({ ...base, app: 'console', kind: 'audit', pages: 1, pageSize: 50 });
      }
    }
  }

  const wanted = new Set(options.attacks ?? attackKinds);
  const attacks: Attack[] = [];
  const attacker = (index: number, timeZone = 'Europe/London', name = `mallory${index}`): SimUser => {
    const user: SimUser = {
      name,
      email: `${name}@example.com`,
      role: 'sales_rep',
      territory: 'EMEA',
      timeZone,
    };
    users.push(user);
    return user;
  };
  const apps: SimApp[] = [];
  const add = (attack: Omit<Attack, 'simulated'>, attackSteps: Step[]) => {
    attacks.push({ ...attack, simulated: true });
    steps.push(...attackSteps);
  };
  const frac = (f: number) => Math.floor(durationMs * f);

  if (wanted.has('whole_table_export')) {
    const who = attacker(1);
    add(
      {
        kind: 'whole_table_export',
        actors: [who.email],
        apps: ['call-notes'],
        at: frac(0.2),
        description: 'one user pages through the whole contact table, 100 a page',
      },
      [step(frac(0.2), who, 'call-notes', 'contacts', 60, 100, 0, 'whole_table_export')],
    );
  }
  if (wanted.has('split_export')) {
    const who = attacker(2);
    apps.push({
      id: 'field-notes',
      scopes: contactScopes.split(' '),
      expectedUsers: 10,
      expectedReads: { contact: 40, account: 20 },
    });
    const split: Step[] = [];
    // Each token of each app pages on from its own start: ten pages each, 250 distinct records.
    for (let i = 0; i < 40; i++) {
      const app = i % 3 === 2 ? 'field-notes' : 'call-notes';
      split.push(step(frac(0.35) + i * 1500, who, app, 'contacts', 1, 25, i % 2, 'split_export'));
    }
    add(
      {
        kind: 'split_export',
        actors: [who.email],
        apps: ['call-notes', 'field-notes'],
        at: frac(0.35),
        description: 'the same export split over two tokens and two apps, 25 a page',
      },
      split,
    );
  }
  if (wanted.has('slow_export')) {
    const who = attacker(3);
    const slow: Step[] = [];
    // Over most of a day (or of a shorter span): a day's budget is what it has to stay under.
    const every = Math.floor((Math.min(durationMs, dayMs) * 0.6) / 14);
    for (let i = 0; i < 14; i++)
      slow.push(step(frac(0.1) + i * every, who, 'call-notes', 'contacts', 1, 20, 0, 'slow_export'));
    add(
      {
        kind: 'slow_export',
        actors: [who.email],
        apps: ['call-notes'],
        at: frac(0.1),
        description:
          'an export below any per-minute or hourly rate: 20 new contacts at a time, spread over the day',
      },
      slow,
    );
  }
  if (wanted.has('off_hours_bulk')) {
    const who = attacker(4, options.nightZone);
    add(
      {
        kind: 'off_hours_bulk',
        actors: [who.email],
        apps: ['call-notes'],
        at: frac(0.5),
        description: `bulk reads at night in the reader's own time zone (${options.nightZone}): the same 100 contacts four times, within the export budget`,
      },
      [0, 1, 2, 3].map((i) =>
        step(frac(0.5) + i * 3000, who, 'call-notes', 'contacts', 1, 100, 0, 'off_hours_bulk'),
      ),
    );
  }
  if (wanted.has('credential_stuffing')) {
    add(
      {
        kind: 'credential_stuffing',
        actors: ['anonymous'],
        apps: ['call-notes'],
        at: frac(0.6),
        description: 'forged ID tokens offered to /oauth/token, 40 in a few seconds',
      },
      Array.from({ length: 40 }, (_, i) => ({
        at: frac(0.6) + i * 50,
        user: 'anonymous',
        app: 'call-notes',
        kind: 'bad_exchange' as const,
        pages: 1,
        pageSize: 0,
        token: 0,
        attack: 'credential_stuffing' as const,
      })),
    );
  }
  if (wanted.has('stolen_refresh_token')) {
    // The victim signs in (code flow), their app refreshes, then a thief replays the old refresh token.
    const victim = attacker(5, 'Europe/London', 'robin5');
    add(
      {
        kind: 'stolen_refresh_token',
        actors: [victim.email],
        apps: ['call-notes'],
        at: frac(0.65),
        description: "a refresh token replayed from another network after its owner's app used it",
      },
      [step(frac(0.65), victim, 'call-notes', 'stolen_refresh', 1, 0, 0, 'stolen_refresh_token')],
    );
  }
  if (wanted.has('compromised_app')) {
    apps.push({
      id: 'lead-sync',
      scopes: contactScopes.split(' '),
      expectedUsers: 2,
      expectedReads: { contact: 20 },
    });
    const borrowed = users.filter((u) => u.role === 'sales_rep' && !u.name.startsWith('mallory')).slice(0, 6);
    add(
      {
        kind: 'compromised_app',
        actors: borrowed.map((u) => u.email),
        apps: ['lead-sync'],
        at: frac(0.7),
        description:
          'an app planned for 2 users × 20 contacts a day reads 100 contacts for each of its signed-in users',
      },
      borrowed.map((u, i) =>
        step(frac(0.7) + i * 400, u, 'lead-sync', 'contacts', 4, 25, 0, 'compromised_app'),
      ),
    );
  }
  steps.sort((a, b) => a.at - b.at);
  return { seed: options.seed, durationMs, users, apps, steps, attacks };
}

function step(
  at: number,
  user: SimUser,
  app: string,
  kind: StepKind,
  pages: number,
  pageSize: number,
  token: number,
  attack: AttackKind,
): Step {
  return { at, user: user.name, app, kind, pages, pageSize, token, attack };
}
