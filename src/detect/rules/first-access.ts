/**
 * sensitive_first_access: an app reads a sensitive field class (pii, financial, ...) for the first time,
 * once it has been seen for `learnSeconds`: what it did while learning is its normal.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import { secondsOf } from './window.js';

type Options = DetectConfig['rules']['sensitive_first_access'];

interface AppSeen {
  /** When the rule first saw the app. */
  readonly since: number;
  /** `class:object` pairs the app has read. */
  readonly classes: readonly string[];
}

export interface FirstAccessState {
  readonly apps: Readonly<Record<string, AppSeen>>;
}

export function sensitiveFirstAccess(options: Options): Rule<FirstAccessState> {
  const classOf = new Map<string, string>();
  for (const [name, fields] of Object.entries(options.classes)) {
    for (const field of fields) classOf.set(field, name);
  }
  return {
    id: 'sensitive_first_access',
    initial: () => ({ apps: {} }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (
        Number.isNaN(t) ||
        !event.action.startsWith('crm.') ||
        !event.app_id ||
        event.app_id === 'unknown'
      ) {
        return { state, detections: [] };
      }
      const known = state.apps[event.app_id];
      const app: AppSeen = known ?? { since: t, classes: [] };
      const touched = new Set<string>();
      if (event.outcome === 'allow' && event.fields) {
        for (const field of event.fields.split(',')) {
          const name = classOf.get(`${event.resource_type}.${field}`);
          if (name) touched.add(`${name}:${event.resource_type}`);
        }
      }
      const fresh = [...touched].filter((c) => !app.classes.includes(c)).sort();
      if (fresh.length === 0) {
        return { state: known ? state : { apps: { ...state.apps, [event.app_id]: app } }, detections: [] };
      }
      const next = {
        apps: { ...state.apps, [event.app_id]: { ...app, classes: [...app.classes, ...fresh] } },
      };
      if (t - app.since < options.learnSeconds) return { state: next, detections: [] };
      return {
        state: next,
        detections: [
          {
            rule: 'sensitive_first_access',
            severity: options.severity,
            actor: event.actor_id,
            app: event.app_id,
            summary: `${event.app_id} read ${fresh.map((c) => c.replace(':', ' fields of ')).join(', ')} for the first time (user ${event.actor_id}; fields ${event.fields})`,
            evidence: [index],
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
