/**
 * The lifecycle's decisions as small pure functions: which state an admission decision leads to, which
 * steps each state allows, separation of duties, and when a plan change needs no reviewer.
 */
import { CatalogError } from '../errors/index.js';
import type { App, AppStatus } from './apps.js';
import { normaliseEmail } from './identity.js';

export type LifecycleStep = 'update' | 'approve' | 'deny' | 'suspend' | 'restore' | 'retire' | 'transfer';

/** Where an admission decision puts a new plan: approved at once, in the reviewer queue, or a draft. */
export function stateAfter(decision: 'approve' | 'review' | 'deny'): AppStatus {
  return decision === 'approve' ? 'approved' : decision === 'review' ? 'in_review' : 'draft';
}

/** Throws APP_STATE, saying what would be possible, when the app's state does not allow `step`. */
export function assertStep(app: App, step: LifecycleStep): void {
  const allowed = stepAllowed(app, step);
  if (allowed) return;
  const hint: Record<LifecycleStep, string> = {
    update: 'a suspended or retired app cannot change its plan',
    approve: 'only an app in review, or an approved app with a plan change pending, can be approved',
    deny: 'only an app in review, or an approved app with a plan change pending, can be denied',
    suspend: 'a retired app cannot be suspended',
    restore: 'only a suspended app can be restored',
    retire: 'the app is retired already',
    transfer: 'a retired app cannot change owner',
  };
  throw new CatalogError('APP_STATE', `${app.id} is ${app.status}: ${hint[step]}`, {
    app_id: app.id,
    state: app.status,
  });
}

function stepAllowed(app: App, step: LifecycleStep): boolean {
  switch (step) {
    case 'update':
      return ['draft', 'in_review', 'approved'].includes(app.status);
    case 'approve':
    case 'deny':
      return app.status === 'in_review' || (app.status === 'approved' && app.pending !== undefined);
    case 'suspend':
      return app.status !== 'retired';
    case 'restore':
      return app.status === 'suspended';
    case 'retire':
    case 'transfer':
      return app.status !== 'retired';
  }
}

/**
 * Separation of duties: nobody approves (or restores to approved) an app they own or registered, nor
 * a plan change they asked for. Throws SEPARATION_OF_DUTIES naming the rule and the reason.
 */
export function assertSeparateDuties(app: App, approver: string): void {
  const who = normaliseEmail(approver);
  const problem =
    who === normaliseEmail(app.owner)
      ? `${approver} owns ${app.id}`
      : who === normaliseEmail(app.requestedBy)
        ? `${approver} registered ${app.id}`
        : app.pending && who === normaliseEmail(app.pending.requested_by)
          ? `${approver} asked for the pending change of ${app.id}`
          : undefined;
  if (problem) {
    throw new CatalogError(
      'SEPARATION_OF_DUTIES',
      `separation of duties: ${problem}; another reviewer must approve it`,
      { rule: 'separation-of-duties', app_id: app.id },
    );
  }
}

/**
 * A change of an approved plan needs no reviewer when the policy approves it, or when it only takes
 * away: no new scope and no higher risk (narrowing, e.g. after `app suggest-scopes`). A different
 * consent purpose always needs one, whatever the policy says: it changes whose personal data the app
 * processes and why (and dropping the purpose hands the choice back to configuration). So does a
 * different residency (`residencyOf`): it moves personal data across borders.
 */
export function appliesAtOnce(
  decision: 'approve' | 'review',
  held: { scopes: readonly string[]; risk?: number; purpose?: string; residency?: string },
  next: { scopes: readonly string[]; risk: number; purpose?: string; residency?: string },
): boolean {
  if (held.purpose !== next.purpose) return false;
  // Where the app runs and which regions' records it receives decide which transfers are lawful.
  if (held.residency !== next.residency) return false;
  if (decision === 'approve') return true;
  const narrower = next.scopes.every((scope) => held.scopes.includes(scope));
  return narrower && next.risk <= (held.risk ?? 0);
}

/** A plan's residency as one comparable value: its region and its sorted transfers; undefined when it names none. */
export function residencyOf(manifest: Readonly<Record<string, unknown>>): string | undefined {
  const residency = manifest.residency as { region?: unknown; transfers?: unknown } | undefined;
  if (typeof residency?.region !== 'string') return undefined;
  const transfers = Array.isArray(residency.transfers) ? residency.transfers.map(String).sort() : [];
  return `${residency.region}<${transfers.join(',')}`;
}

/** Scopes the app holds now that the next plan drops: tokens carrying them must be revoked. */
export function droppedScopes(held: readonly string[], next: readonly string[]): string[] {
  return held.filter((scope) => !next.includes(scope));
}

/** The state a suspended app goes back to: what it was, except that a lapsed approval needs review. */
export function restoreTarget(suspendedFrom: string | undefined, approvalLapsed: boolean): AppStatus {
  if (suspendedFrom === 'approved') return approvalLapsed ? 'in_review' : 'approved';
  if (suspendedFrom === 'draft' || suspendedFrom === 'in_review') return suspendedFrom;
  return approvalLapsed ? 'in_review' : 'approved';
}

/**
 * The consent purpose in force for an app: its approved plan's `consent_purpose`, never that of a
 * pending change nor of a plan nobody approved; undefined when the approved plan names none.
 */
export function purposeInForce(app: App): string | undefined {
  if (app.status !== 'approved') return undefined;
  const purpose = app.manifest.consent_purpose;
  return typeof purpose === 'string' ? purpose : undefined;
}

/** Objects whose records are about a data subject, so that consent decides whether an app gets them. */
const consentObjects: ReadonlySet<string> = new Set(['contact', 'note']);

/**
 * What a maker should know about a plan's consent that no admission rule decides: a plan that opens
 * contacts or notes (a note follows its contact's consent) but names no consent purpose, and for which
 * configuration names none either, is valid but will see no contact nor any note about one.
 */
export function consentWarnings(
  plan: { readonly consent_purpose?: string },
  objects: readonly string[],
  configured: string | undefined,
  vocabulary: readonly string[],
): string[] {
  if (plan.consent_purpose !== undefined || configured !== undefined) return [];
  const opened = [...new Set(objects)].filter((object) => consentObjects.has(object)).sort();
  if (opened.length === 0) return [];
  return [
    `the plan opens ${opened.join(' and ')} fields but names no consent_purpose, so the app will see no contact (nor any note about one): add consent_purpose, one of ${vocabulary.join(', ')}`,
  ];
}
