/**
 * credential_stuffing: grants refused at /oauth/token (`token.grant` denied), counted per caller
 * network and per client. One network guessing is aimed at that network (throttled at the token
 * endpoint, not the app's users); many networks guessing at one client is app-wide (a person decides).
 */
import type { DetectConfig } from '../../config/index.js';
import type { Detection, Rule } from '../types.js';
import {
  addToWindow,
  mayFire,
  pruned,
  secondsOf,
  windowEvidence,
  windowTotal,
  type Window,
} from './window.js';

type Options = DetectConfig['rules']['credential_stuffing'];

export interface CredentialStuffingState {
  readonly windows: Readonly<Record<string, Window>>;
  readonly fired: Readonly<Record<string, number>>;
  readonly prunedAt: number;
}

/** The client id of a `token.grant` event's resource (`<grant type> client:<id>`), else its app. */
const clientOf = (resourceId: string, appId: string) => /client:(\S+)$/.exec(resourceId)?.[1] ?? appId;

export function credentialStuffing(options: Options): Rule<CredentialStuffingState> {
  const seconds = options.windowSeconds;
  const ignored = (reason: string) => options.ignoreReasons.some((prefix) => reason.startsWith(prefix));
  return {
    id: 'credential_stuffing',
    initial: () => ({ windows: {}, fired: {}, prunedAt: 0 }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (
        Number.isNaN(t) ||
        event.action !== 'token.grant' ||
        event.outcome !== 'deny' ||
        ignored(event.reason)
      ) {
        return { state, detections: [] };
      }
      const network = `network ${event.client_network ?? 'unknown'}`;
      const client = `client ${clientOf(event.resource_id, event.app_id)}`;
      const windows = {
        ...state.windows,
        [network]: addToWindow(state.windows[network] ?? [], t, 1, index, seconds),
        [client]: addToWindow(state.windows[client] ?? [], t, 1, index, seconds),
      };
      let fired = { ...state.fired };
      const detections: Detection[] = [];
      const check = (key: string, max: number, scope: 'actor' | 'app', summary: (n: number) => string) => {
        const total = windowTotal(windows[key] ?? []);
        if (total < max || !mayFire(fired, key, t, options.repeatSeconds)) return;
        fired = { ...fired, [key]: t };
        detections.push({
          rule: 'credential_stuffing',
          severity: options.severity,
          actor: scope === 'actor' ? network : client,
          app: event.app_id,
          summary: summary(total),
          evidence: windowEvidence(windows[key] ?? []),
          at: event.timestamp,
          scope,
        });
      };
      const last = event.reason.split(':')[0];
      check(
        network,
        options.maxPerNetwork,
        'actor',
        (n) =>
          `${network} was refused ${n} grants at /oauth/token in ${seconds}s (last: ${last} for ${client})`,
      );
      check(
        client,
        options.maxPerClient,
        'app',
        (n) =>
          `${client} (${event.app_id}) was refused ${n} grants at /oauth/token in ${seconds}s from many networks (last: ${last})`,
      );
      if (t - state.prunedAt <= seconds)
        return { state: { windows, fired, prunedAt: state.prunedAt }, detections };
      return {
        state: {
          windows: pruned(windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
        },
        detections,
      };
    },
  };
}
