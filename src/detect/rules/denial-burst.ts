/** denial_burst: many denied requests of one principal in a short window (probing scopes, records, ids). */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import {
  addToWindow,
  mayFire,
  pruned,
  secondsOf,
  windowEvidence,
  windowTotal,
  type Window,
} from './window.js';

type Options = DetectConfig['rules']['denial_burst'];

export interface DenialBurstState {
  readonly windows: Readonly<Record<string, Window>>;
  readonly fired: Readonly<Record<string, number>>;
  readonly prunedAt: number;
}

export function denialBurst(options: Options): Rule<DenialBurstState> {
  const seconds = options.windowSeconds;
  const ignored = (reason: string) => options.ignoreReasons.some((prefix) => reason.startsWith(prefix));
  return {
    id: 'denial_burst',
    initial: () => ({ windows: {}, fired: {}, prunedAt: 0 }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (
        Number.isNaN(t) ||
        event.outcome !== 'deny' ||
        event.action === 'bulk_export' ||
        // Refused grants at /oauth/token are credential_stuffing's.
        event.action === 'token.grant' ||
        ignored(event.reason)
      ) {
        return { state, detections: [] };
      }
      // An anonymous caller (no valid token) is known only by its network.
      const anonymous = event.actor_id === 'anonymous';
      const actor = anonymous ? `network ${event.client_network ?? 'unknown'}` : event.actor_id;
      const key = anonymous ? actor : `${event.actor_id}|${event.app_id}`;
      const window = addToWindow(state.windows[key] ?? [], t, 1, index, seconds);
      let next: DenialBurstState = { ...state, windows: { ...state.windows, [key]: window } };
      if (t - state.prunedAt > seconds) {
        next = {
          windows: pruned(next.windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(state.fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
        };
      }
      const total = windowTotal(window);
      if (total < options.maxDenials || !mayFire(next.fired, key, t, options.repeatSeconds)) {
        return { state: next, detections: [] };
      }
      return {
        state: { ...next, fired: { ...next.fired, [key]: t } },
        detections: [
          {
            rule: 'denial_burst',
            severity: options.severity,
            actor,
            app: event.app_id,
            summary: `${actor} was denied ${total} times in ${seconds}s through ${event.app_id} (last: ${event.reason.split(':')[0]})`,
            evidence: windowEvidence(window),
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
