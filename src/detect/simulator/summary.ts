/** The simulator's findings from a run: per attack, and for ordinary traffic. Pure, so it is tested alone. */
import type { IncidentDetail } from '../incidents.js';
import type { RunResult } from './run.js';
import type { AttackKind, Scenario } from './scenario.js';

export interface AttackOutcome {
  readonly kind: AttackKind;
  readonly description: string;
  readonly simulated: boolean;
  readonly note?: string;
  readonly detected: boolean;
  readonly contained: boolean;
  /** Ms from the attack's first request to its first detection / containment (simulated ms on a simulated clock). */
  readonly detection_ms: number | null;
  readonly containment_ms: number | null;
  /**
   * Distinct records the attack got before it was stopped (what left the CRM), and their share of the
   * table it read; `records_returned` counts re-reads of the same records too.
   */
  readonly records_read: number;
  readonly records_returned: number;
  readonly share_of_table: number | null;
  readonly rules: readonly string[];
  /** What refused the attack's requests, by app and code. */
  readonly refused_by_code: Readonly<Record<string, number>>;
  readonly incidents: readonly string[];
  readonly containment: readonly string[];
}

export interface SimulationSummary {
  readonly seed: number;
  readonly simulated_minutes: number;
  /** `simulated`: the server ran on the simulator's clock (deterministic); `real`: compressed real time. */
  readonly clock: 'simulated' | 'real';
  /** Simulated seconds per second of wall time (in real time, the --speed asked for). */
  readonly speed: number;
  readonly wall_seconds: number;
  readonly users: number;
  readonly table_size: number | null;
  readonly requests: number;
  readonly attacks: readonly AttackOutcome[];
  readonly ordinary: {
    readonly requests: number;
    readonly refused: number;
    readonly refused_share: number;
    /** Users and apps contained although no attack of theirs called for it. */
    readonly false_containments: number;
    readonly contained_users: readonly string[];
    readonly contained_apps: readonly string[];
    readonly refused_by_code: Readonly<Record<string, number>>;
  };
  /** Every incident the run opened: what fired, at whom, and what was done. */
  readonly incidents: ReadonlyArray<{
    readonly id: string;
    readonly rule: string;
    readonly actor: string;
    readonly app: string;
    readonly summary: string;
    readonly containment: readonly string[];
  }>;
  /**
   * From an incident's detection to its first containment, in ms (the detector's own latency); on a
   * simulated clock, which stands still while detection runs, not measured (null): see `npm run bench`.
   */
  readonly detection_to_containment_ms: {
    readonly p50: number | null;
    readonly p99: number | null;
    readonly n: number;
  };
}

const at = (iso: string) => Date.parse(iso);

/** Refused requests by app and code. */
function countCodes(requests: RunResult['requests']): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    if (r.status >= 200 && r.status < 300) continue;
    const key = `${r.app} ${r.code ?? String(r.status)}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
}

/** Whether an incident belongs to an attack: its actor among the attack's, through one of its apps. */
function belongs(incident: IncidentDetail, attack: Scenario['attacks'][number]): boolean {
  if (attack.kind === 'credential_stuffing') return incident.actor.startsWith('network ');
  return attack.actors.includes(incident.actor) && attack.apps.includes(incident.app_id);
}

export function summarize(
  scenario: Scenario,
  run: RunResult,
  options: { speed: number; tableSize?: number },
): SimulationSummary {
  /** Apps that exist only for an attack: containing them hurts nobody ordinary. */
  const attackApps = new Set(scenario.apps.map((a) => a.id));
  const attackers = new Set(
    scenario.attacks.filter((a) => a.kind !== 'compromised_app').flatMap((a) => a.actors),
  );
  const attacks: AttackOutcome[] = scenario.attacks.map((attack) => {
    const own = run.requests.filter((r) => r.attack === attack.kind);
    const start = own.length > 0 ? Math.min(...own.map((r) => r.t)) : null;
    const found = run.incidents.filter((i) => belongs(i, attack));
    const times = (kind: string) =>
      found.flatMap((i) => i.timeline.filter((t) => t.kind === kind).map((t) => at(t.at) - run.startedAt));
    const detectedAt = times('detected');
    const containedAt = times('contained');
    const since = (values: number[]) =>
      start === null || values.length === 0 ? null : Math.max(0, Math.min(...values) - start);
    const records = own.filter((r) => r.status === 200).reduce((sum, r) => sum + r.records, 0);
    return {
      kind: attack.kind,
      description: attack.description,
      simulated: attack.simulated,
      ...(attack.note && { note: attack.note }),
      detected: detectedAt.length > 0,
      contained: containedAt.length > 0,
      detection_ms: since(detectedAt),
      containment_ms: since(containedAt),
      records_read: run.distinctRead[attack.kind] ?? 0,
      records_returned: records,
      share_of_table: options.tableSize ? (run.distinctRead[attack.kind] ?? 0) / options.tableSize : null,
      rules: [...new Set(found.map((i) => i.rule))],
      refused_by_code: countCodes(own),
      incidents: found.map((i) => i.id),
      containment: [
        ...new Set(
          found.flatMap((i) =>
            i.containment.filter((c) => c.status === 'applied').map((c) => `${c.action} ${c.target}`),
          ),
        ),
      ],
    };
  });

  // A containment is false when it hits an ordinary user, or an app ordinary people use, unless an
  // attacker of the same incident is the user (an attacker's own tokens are fair game).
  const containedUsers = new Set<string>();
  const containedApps = new Set<string>();
  for (const incident of run.incidents) {
    for (const c of incident.containment) {
      if (c.status !== 'applied') continue;
      const user = /user:(\S+)/.exec(c.target)?.[1];
      const app = /^app:(\S+)$/.exec(c.target)?.[1];
      if (user !== undefined && !attackers.has(user)) containedUsers.add(user);
      if (app !== undefined && !attackApps.has(app)) containedApps.add(app);
    }
  }
  const ordinary = run.requests.filter((r) => r.attack === undefined);
  const refused = ordinary.filter((r) => r.status < 200 || r.status >= 300);
  const byCode = countCodes(refused);
  const lags = run.incidents.flatMap((i) => {
    const detected = i.timeline.find((t) => t.kind === 'detected');
    const contained = i.timeline.find((t) => t.kind === 'contained');
    return detected && contained ? [Math.max(0, at(contained.at) - at(detected.at))] : [];
  });
  return {
    seed: scenario.seed,
    simulated_minutes: scenario.durationMs / 60_000,
    clock: run.clock,
    speed:
      run.clock === 'real'
        ? options.speed
        : Math.round((run.endedAt - run.startedAt) / Math.max(1, run.wallMs)),
    wall_seconds: Math.round(run.wallMs / 100) / 10,
    users: scenario.users.length,
    table_size: options.tableSize ?? null,
    requests: run.requests.length,
    attacks,
    ordinary: {
      requests: ordinary.length,
      refused: refused.length,
      refused_share: ordinary.length === 0 ? 0 : refused.length / ordinary.length,
      false_containments: containedUsers.size + containedApps.size,
      contained_users: [...containedUsers].sort(),
      contained_apps: [...containedApps].sort(),
      refused_by_code: byCode,
    },
    incidents: run.incidents.map((i) => ({
      id: i.id,
      rule: i.rule,
      actor: i.actor,
      app: i.app_id,
      summary: i.summary,
      containment: i.containment.map((c) => `${c.action} ${c.target} ${c.status}`),
    })),
    detection_to_containment_ms:
      run.clock === 'real'
        ? { p50: percentile(lags, 50), p99: percentile(lags, 99), n: lags.length }
        : { p50: null, p99: null, n: 0 },
  };
}
