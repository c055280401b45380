/**
 * Containment: what a playbook may do to an app or a user, through functions the composition root
 * injects (the limits, broker and catalog own them), each action audited and, where it can be,
 * reversible by an admin.
 */
import type { AuditEvent } from '../audit/index.js';
import type { Incident } from './incidents.js';

export const actionNames = [
  'alert',
  'throttle_app',
  'throttle_app_user',
  'revoke_app_tokens',
  'revoke_user_tokens',
  'revoke_app_user_tokens',
  'suspend_app',
  'throttle_network',
] as const;
export type ActionName = (typeof actionNames)[number];
export type ContainmentAction = Exclude<ActionName, 'alert'>;

export interface ThrottleSettings {
  /** Requests per second the app keeps while throttled (all its users together). */
  readonly ratePerSecond: number;
  /** How long the throttle lasts unless an admin lifts it sooner. */
  readonly forSeconds: number;
}

/**
 * The levers detection pulls. Each resolves once the change holds on running servers (tokens refused
 * within a second); each throws when it cannot be done. The composition root wires the real ones.
 */
export interface Containment {
  /**
   * The app (all its users), or with `userId` that user in the app only; the 429 its target gets names
   * `incident`.
   */
  throttleApp(
    appId: string,
    options: ThrottleSettings & { reason: string; userId?: string; incident: string },
  ): Promise<void>;
  unthrottleApp(appId: string, options: { reason: string; userId?: string }): Promise<void>;
  /** Every token of the app, of the user, or of the user in the app (both given). */
  revokeTokens(
    target: { appId?: string; userId?: string },
    options: { reason: string; incident?: string },
  ): Promise<void>;
  suspendApp(appId: string, options: { by: string; reason: string }): Promise<void>;
  /**
   * A caller network (`203.0.113.0/24`) held to the throttle at the token endpoint (all its clients);
   * the 429 it gets names `incident`.
   */
  throttleNetwork(
    network: string,
    options: ThrottleSettings & { reason: string; incident: string },
  ): Promise<void>;
  unthrottleNetwork(network: string, options: { reason: string }): Promise<void>;
  restoreApp(appId: string, options: { by: string; reason: string }): Promise<void>;
}

/** What became of one containment action of an incident. */
export interface ContainmentRecord {
  readonly action: ContainmentAction;
  /** `app:<id>`, `user:<email>` or `app:<id> user:<email>`. */
  readonly target: string;
  readonly at: string;
  /** applied; failed (the detail says why); reversed by an admin (throttles and suspensions only). */
  readonly status: 'applied' | 'failed' | 'reversed';
  readonly detail: string;
  readonly reversed_at?: string;
  readonly reversed_by?: string;
}

export interface AuditAppend {
  append(event: AuditEvent): Promise<unknown>;
}

export interface ContainmentDeps {
  readonly containment: Containment;
  readonly audit: AuditAppend;
  readonly throttle: ThrottleSettings;
  readonly now: () => Date;
}

/** The network an incident aims at (`network 203.0.113.0/24`), if it aims at one. */
const networkOf = (incident: Incident) =>
  incident.actor.startsWith('network ') ? incident.actor.slice('network '.length) : undefined;

function targetOf(action: ContainmentAction, incident: Incident): string {
  if (action === 'throttle_network') return `network:${networkOf(incident) ?? ''}`;
  if (action === 'revoke_user_tokens') return `user:${incident.actor}`;
  if (action === 'revoke_app_user_tokens' || action === 'throttle_app_user')
    return `app:${incident.app_id} user:${incident.actor}`;
  return `app:${incident.app_id}`;
}

/** Whether the incident names what the action needs: an app, a user (an anonymous network is neither). */
function applicable(action: ContainmentAction, incident: Incident): boolean {
  const hasApp = incident.app_id !== '' && incident.app_id !== 'unknown';
  const hasUser =
    incident.actor !== '' && incident.actor !== 'anonymous' && !incident.actor.startsWith('network ');
  if (action === 'revoke_user_tokens') return hasUser;
  if (action === 'throttle_network') return (networkOf(incident) ?? 'unknown') !== 'unknown';
  if (action === 'revoke_app_user_tokens' || action === 'throttle_app_user') return hasApp && hasUser;
  return hasApp;
}

async function pull(action: ContainmentAction, incident: Incident, reason: string, deps: ContainmentDeps) {
  const c = deps.containment;
  switch (action) {
    case 'throttle_app':
      return c.throttleApp(incident.app_id, { ...deps.throttle, reason, incident: incident.id });
    case 'throttle_app_user':
      return c.throttleApp(incident.app_id, {
        ...deps.throttle,
        reason,
        userId: incident.actor,
        incident: incident.id,
      });
    case 'revoke_app_tokens':
      return c.revokeTokens({ appId: incident.app_id }, { reason, incident: incident.id });
    case 'revoke_user_tokens':
      return c.revokeTokens({ userId: incident.actor }, { reason, incident: incident.id });
    case 'revoke_app_user_tokens':
      return c.revokeTokens(
        { appId: incident.app_id, userId: incident.actor },
        { reason, incident: incident.id },
      );
    case 'suspend_app':
      return c.suspendApp(incident.app_id, { by: 'detect', reason });
    case 'throttle_network':
      return c.throttleNetwork(networkOf(incident) ?? '', {
        ...deps.throttle,
        reason,
        incident: incident.id,
      });
  }
}

/**
 * Takes each action not already applied to the incident, in order, and audits each as
 * `detect.contain` (outcome error when it failed). A failed action does not stop the next one.
 */
export async function contain(
  incident: Incident,
  actions: readonly ContainmentAction[],
  deps: ContainmentDeps,
): Promise<ContainmentRecord[]> {
  const records: ContainmentRecord[] = [];
  for (const action of actions) {
    const target = targetOf(action, incident);
    const done = incident.containment.some((r) => r.action === action && r.target === target);
    if (done || !applicable(action, incident)) continue;
    const reason = `incident ${incident.id}: ${incident.rule} (${incident.severity})`;
    let status: ContainmentRecord['status'] = 'applied';
    let detail = `${action} ${target}`;
    try {
      await pull(action, incident, reason, deps);
    } catch (error) {
      status = 'failed';
      detail = `${action} ${target} failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    const at = deps.now().toISOString();
    records.push({ action, target, at, status, detail });
    await deps.audit.append(
      containmentEvent(incident, 'detect.contain', target, status, 'detect', `${reason}: ${detail}`, at),
    );
  }
  return records;
}

/** Revocations cannot be taken back: the revoked tokens stay revoked, new sign-ins work again. */
const reversible: ReadonlySet<ContainmentAction> = new Set([
  'throttle_app',
  'throttle_app_user',
  'suspend_app',
  'throttle_network',
]);

/**
 * Reverses what can be reversed (throttle, suspension) of the applied actions; audited as
 * `detect.restore` by `by`. Answers the incident's containment records as they now stand.
 */
export async function restore(
  incident: Incident,
  by: string,
  reason: string,
  deps: ContainmentDeps,
): Promise<{ records: ContainmentRecord[]; reversed: ContainmentRecord[] }> {
  const reversed: ContainmentRecord[] = [];
  const records: ContainmentRecord[] = [];
  for (const record of incident.containment) {
    if (record.status !== 'applied' || !reversible.has(record.action)) {
      records.push(record);
      continue;
    }
    const why = `incident ${incident.id} restored: ${reason}`;
    if (record.action === 'throttle_app')
      await deps.containment.unthrottleApp(incident.app_id, { reason: why });
    else if (record.action === 'throttle_app_user')
      await deps.containment.unthrottleApp(incident.app_id, { reason: why, userId: incident.actor });
    else if (record.action === 'throttle_network')
      await deps.containment.unthrottleNetwork(networkOf(incident) ?? '', { reason: why });
    else await deps.containment.restoreApp(incident.app_id, { by, reason: why });
    const at = deps.now().toISOString();
    const next: ContainmentRecord = { ...record, status: 'reversed', reversed_at: at, reversed_by: by };
    records.push(next);
    reversed.push(next);
    await deps.audit.append(
      containmentEvent(
        incident,
        'detect.restore',
        record.target,
        'applied',
        by,
        `${why}: ${record.action} lifted`,
        at,
      ),
    );
  }
  return { records, reversed };
}

function containmentEvent(
  incident: Incident,
  action: string,
  target: string,
  status: ContainmentRecord['status'],
  actor: string,
  reason: string,
  at: string,
): AuditEvent {
  return {
    timestamp: at,
    actor_id: actor,
    actor_role: actor === 'detect' ? 'system' : 'admin',
    app_id: incident.app_id,
    action,
    resource_type: target.startsWith('user:') ? 'user' : target.startsWith('network:') ? 'network' : 'app',
    resource_id: target,
    scope: '',
    request_id: incident.id,
    trace_id: '',
    outcome: status === 'failed' ? 'error' : 'allow',
    reason,
  };
}
