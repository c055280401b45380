/**
 * new_network: a user calls from a network (/24, /48) not seen for them before, once they have been
 * seen for `learnSeconds`. Each user keeps their `maxNetworks` most recently used networks.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import { secondsOf } from './window.js';

type Options = DetectConfig['rules']['new_network'];

interface UserNetworks {
  readonly since: number;
  /** Most recently used last. */
  readonly networks: readonly string[];
}

export interface NewNetworkState {
  readonly users: Readonly<Record<string, UserNetworks>>;
}

export function newNetwork(options: Options): Rule<NewNetworkState> {
  return {
    id: 'new_network',
    initial: () => ({ users: {} }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      const network = event.client_network;
      if (Number.isNaN(t) || !network || network === 'unknown' || event.actor_id === 'anonymous') {
        return { state, detections: [] };
      }
      const known = state.users[event.actor_id];
      if (known && known.networks[known.networks.length - 1] === network) return { state, detections: [] };
      const user = known ?? { since: t, networks: [] };
      const seen = user.networks.includes(network);
      const networks = [...user.networks.filter((n) => n !== network), network].slice(-options.maxNetworks);
      const next = { users: { ...state.users, [event.actor_id]: { since: user.since, networks } } };
      if (seen || t - user.since < options.learnSeconds) return { state: next, detections: [] };
      return {
        state: next,
        detections: [
          {
            rule: 'new_network',
            severity: options.severity,
            actor: event.actor_id,
            app: event.app_id,
            summary: `${event.actor_id} called ${event.app_id} from ${network}, a network not seen for them before (known: ${user.networks.slice(-5).join(', ')})`,
            evidence: [index],
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
