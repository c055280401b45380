import type { Config } from '../config/index.js';
import type { CrmObject, CrmRecord } from '../crm/index.js';
import type { Principal, RowCondition } from '../policy/index.js';

/**
 * Consent (DESIGN.md "protect"): a contact is processed for an app's purpose only if the contact
 * consented to that purpose. The `consent` column holds a sorted JSON array of purpose codes, so "has
 * consented to P" is "consent is one of the sorted arrays of the vocabulary that contain P": an `in`
 * condition every connector can push into its query, and a contact without consent never leaves the store.
 */

/** The only object whose records are data subjects with consent flags. */
export const consentObject: CrmObject = 'contact';
/** The internal field holding the flags; read for the check, never returned unless a fieldset grants it. */
export const consentField = 'consent';

/** The purpose the principal's app processes contacts for; undefined when it declared none. */
export function purposeOf(config: Config, principal: Principal): string | undefined {
  const purposes = config.gateway.consent.appPurposes;
  return Object.hasOwn(purposes, principal.appId) ? purposes[principal.appId] : undefined;
}

/**
 * The row condition that keeps only contacts who consented to the app's purpose. An app without a
 * purpose gets an empty `in` list, which matches nothing: no declared purpose, no contact.
 */
export function consentCondition(config: Config, principal: Principal): RowCondition {
  const purpose = purposeOf(config, principal);
  const vocabulary = [...new Set(config.gateway.consent.purposes)].sort();
  const value = purpose === undefined ? [] : subsetsContaining(vocabulary, purpose);
  return { field: consentField, op: 'in', value };
}

/** Every sorted subset of `vocabulary` (sorted) that holds `purpose`, as the JSON the column stores. */
function subsetsContaining(vocabulary: readonly string[], purpose: string): string[] {
  if (!vocabulary.includes(purpose)) return [];
  const others = vocabulary.filter((p) => p !== purpose);
  const out: string[] = [];
  for (let mask = 0; mask < 1 << others.length; mask++) {
    const subset = others.filter((_, i) => mask & (1 << i));
    out.push(JSON.stringify([...subset, purpose].sort()));
  }
  return out;
}

/** Whether a fetched contact consented to the app's purpose; anything unreadable counts as no consent. */
export function hasConsent(config: Config, principal: Principal, record: CrmRecord): boolean {
  const purpose = purposeOf(config, principal);
  const flags = record[consentField];
  if (purpose === undefined || typeof flags !== 'string') return false;
  try {
    const parsed: unknown = JSON.parse(flags);
    return Array.isArray(parsed) && parsed.includes(purpose);
  } catch {
    return false;
  }
}

/** Fields that stay when a contact's personal data is withheld: what links it, nothing about the person. */
const keptWhenWithheld: ReadonlySet<string> = new Set(['id', 'account_id', 'territory', 'owner']);

/** The contact with every personal field nulled (consent mode `mask`). */
export function withholdPersonalData(record: CrmRecord): CrmRecord {
  const out: CrmRecord = {};
  for (const [field, value] of Object.entries(record))
    out[field] = keptWhenWithheld.has(field) ? value : null;
  return out;
}
