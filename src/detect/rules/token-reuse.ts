/**
 * refresh_token_reuse: the broker saw a refresh token (or an authorization code) used twice and revoked
 * the whole sign-in (`token.family_revoked`). Either the app or a thief holds a copy of the user's token.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import { mayFire, pruned, secondsOf } from './window.js';

type Options = DetectConfig['rules']['refresh_token_reuse'];

export interface TokenReuseState {
  readonly fired: Readonly<Record<string, number>>;
}

const reuseReasons = new Set(['refresh token reused', 'authorization code replayed']);

export function refreshTokenReuse(options: Options): Rule<TokenReuseState> {
  return {
    id: 'refresh_token_reuse',
    initial: () => ({ fired: {} }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (Number.isNaN(t) || event.action !== 'token.family_revoked' || !reuseReasons.has(event.reason)) {
        return { state, detections: [] };
      }
      const key = `${event.actor_id}|${event.app_id}`;
      if (!mayFire(state.fired, key, t, options.repeatSeconds)) return { state, detections: [] };
      const fired = { ...pruned(state.fired, (at) => t - at >= options.repeatSeconds), [key]: t };
      return {
        state: { fired },
        detections: [
          {
            rule: 'refresh_token_reuse',
            severity: options.severity,
            actor: event.actor_id,
            app: event.app_id,
            summary: `${event.reason} for ${event.actor_id} in ${event.app_id}: the broker revoked the sign-in; a copy of the token is in other hands`,
            evidence: [index],
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
