/** The rule set built from configuration: every enabled rule, in a fixed order. */
import type { DetectConfig } from '../../config/index.js';
import type { Detection, Observed, Rule } from '../types.js';
import { credentialStuffing } from './credential-stuffing.js';
import { denialBurst } from './denial-burst.js';
import { sensitiveFirstAccess } from './first-access.js';
import { massExport } from './mass-export.js';
import { newNetwork } from './new-network.js';
import { offHoursBulk } from './off-hours.js';
import { rateAnomaly } from './rate-anomaly.js';
import { refreshTokenReuse } from './token-reuse.js';

/** A rule whose state the engine holds opaquely: it only ever hands a rule back its own state. */
const opaque = <S>(rule: Rule<S>) => rule as unknown as Rule<unknown>;

export function rulesFrom(config: DetectConfig): Array<Rule<unknown>> {
  const r = config.rules;
  const all: Array<[boolean, Rule<unknown>]> = [
    [r.mass_export.enabled, opaque(massExport(r.mass_export))],
    [r.off_hours_bulk.enabled, opaque(offHoursBulk(r.off_hours_bulk, config.workingHours))],
    [r.rate_anomaly.enabled, opaque(rateAnomaly(r.rate_anomaly))],
    [r.denial_burst.enabled, opaque(denialBurst(r.denial_burst))],
    [r.refresh_token_reuse.enabled, opaque(refreshTokenReuse(r.refresh_token_reuse))],
    [r.sensitive_first_access.enabled, opaque(sensitiveFirstAccess(r.sensitive_first_access))],
    [r.new_network.enabled, opaque(newNetwork(r.new_network))],
    [r.credential_stuffing.enabled, opaque(credentialStuffing(r.credential_stuffing))],
  ];
  return all.filter(([enabled]) => enabled).map(([, rule]) => rule);
}

/**
 * Runs `rules` over events, from `from` (a previous replay's states) or their initial states: every
 * detection in order, and the states after the last event (tests, playbook cases).
 */
export function replay(
  rules: ReadonlyArray<Rule<unknown>>,
  events: Iterable<Observed>,
  from?: ReadonlyMap<string, unknown>,
): { detections: Detection[]; states: Map<string, unknown> } {
  const states = new Map(
    rules.map((rule) => [rule.id, from?.has(rule.id) ? from.get(rule.id) : rule.initial()]),
  );
  const detections: Detection[] = [];
  for (const observed of events) {
    for (const rule of rules) {
      const { state, detections: found } = rule.step(states.get(rule.id), observed);
      states.set(rule.id, state);
      detections.push(...found);
    }
  }
  return { detections, states };
}
