import type { Config } from '../config/index.js';
import type { CrmConnector, CrmObject, CrmRecord } from '../crm/index.js';
import type { Principal, RowCondition } from '../policy/index.js';

/**
 * Consent (DESIGN.md "protect"): a contact is processed for an app's purpose only if the contact
 * consented to that purpose. The `consent` column holds a sorted JSON array of purpose codes, so "has
 * consented to P" is "consent is one of the sorted arrays of the vocabulary that contain P": an `in`
 * condition every connector can push into its query, and a contact without consent never leaves the store.
 *
 * A note about a contact (`contact_id` set) speaks about that person, so it follows the contact's
 * consent. Connectors cannot join, so that check runs in the gateway on each fetched page: one query for
 * the consent of the contacts the page links to.
 */

/** The only object whose records are data subjects with consent flags. */
export const consentObject: CrmObject = 'contact';
/** The internal field holding the flags; read for the check, never returned unless a fieldset grants it. */
export const consentField = 'consent';
/** Objects about a contact through this field; their consent is that contact's. */
export const linkingField = 'contact_id';
const linkedObjects: ReadonlySet<CrmObject> = new Set(['note']);

/** The internal fields a read of `object` must fetch so that consent can be checked. */
export function consentFetchFields(object: CrmObject): string[] {
  if (object === consentObject) return [consentField];
  return linkedObjects.has(object) ? [linkingField] : [];
}

/**
 * The purpose the principal's app processes contacts for: its approved plan's `consent_purpose`, else
 * the operator's `gateway.consent.appPurposes` (apps outside the catalog); undefined when neither names one.
 */
export function purposeOf(config: Config, principal: Principal): string | undefined {
  if (principal.consentPurpose !== undefined) return principal.consentPurpose;
  const purposes = config.gateway.consent.appPurposes;
  return Object.hasOwn(purposes, principal.appId) ? purposes[principal.appId] : undefined;
}

/**
 * The row condition that keeps only contacts who consented to the app's purpose. An app without a
 * purpose gets an empty `in` list, which matches nothing: no declared purpose, no contact.
 */
export function consentCondition(config: Config, principal: Principal): RowCondition {
  return consentOf(config, principal).condition;
}

interface AppConsent {
  readonly condition: RowCondition;
  /** The condition's values: the stored flags that hold the app's purpose. */
  readonly accepted: ReadonlySet<string>;
}

/** Per (frozen) configuration and purpose, not app (an approved plan change moves an app to another). */
const consents = new WeakMap<Config, Map<string | undefined, AppConsent>>();

function consentOf(config: Config, principal: Principal): AppConsent {
  let byPurpose = consents.get(config);
  if (!byPurpose) {
    byPurpose = new Map();
    consents.set(config, byPurpose);
  }
  const purpose = purposeOf(config, principal);
  let consent = byPurpose.get(purpose);
  if (!consent) {
    const vocabulary = [...new Set(config.gateway.consent.purposes)].sort();
    const value = purpose === undefined ? [] : subsetsContaining(vocabulary, purpose);
    consent = {
      condition: Object.freeze({ field: consentField, op: 'in', value: Object.freeze(value) }),
      accepted: new Set(value),
    };
    byPurpose.set(purpose, consent);
  }
  return consent;
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

/**
 * Whether a fetched contact consented to the app's purpose: exactly when its flags are among those the
 * consent condition admits, so the gateway and the store never disagree; anything else (unreadable,
 * not in the sorted form) counts as no consent.
 */
export function hasConsent(config: Config, principal: Principal, record: CrmRecord): boolean {
  const flags = record[consentField];
  return typeof flags === 'string' && consentOf(config, principal).accepted.has(flags);
}

/**
 * Fields that stay when personal data is withheld: for a contact, what links it and nothing about the
 * person; for a note, everything but its text (who wrote it, when, and what it hangs off).
 */
const keptWhenWithheld: Readonly<Partial<Record<CrmObject, ReadonlySet<string>>>> = {
  contact: new Set(['id', 'account_id', 'territory', 'owner']),
  note: new Set([
    'id',
    'account_id',
    'contact_id',
    'opportunity_id',
    'author',
    'created_at',
    'territory',
    'owner',
  ]),
};

/** Of `readable`, the fields a record of `object` shows nulled when its data subject did not consent. */
export function consentWithheldFields(object: CrmObject, readable: ReadonlySet<string>): Set<string> {
  const kept = keptWhenWithheld[object];
  if (!kept) return new Set();
  return new Set([...readable].filter((field) => !kept.has(field)));
}

/** The record with every personal field nulled (consent mode `mask`). */
export function withholdPersonalData(object: CrmObject, record: CrmRecord): CrmRecord {
  const kept = keptWhenWithheld[object] ?? new Set(['id']);
  const out: CrmRecord = {};
  for (const [field, value] of Object.entries(record)) out[field] = kept.has(field) ? value : null;
  return out;
}

/** Whether a fetched record may be processed for the app's purpose. */
export type ConsentCheck = (record: CrmRecord) => boolean;

/**
 * The consent check for fetched records of `object`, or undefined when the object carries no consent:
 * a contact by its own flags; a note by the flags of the contact it links to (fetched here, in one
 * query per 1000 contacts); a note linking no contact is about no data subject. A contact the lookup
 * does not find counts as no consent.
 */
export async function consentCheck(
  crm: CrmConnector,
  config: Config,
  principal: Principal,
  object: CrmObject,
  records: readonly CrmRecord[],
): Promise<ConsentCheck | undefined> {
  if (object === consentObject) return (record) => hasConsent(config, principal, record);
  if (!linkedObjects.has(object)) return undefined;
  const linked = new Set<string>();
  for (const record of records) {
    const contact = record[linkingField];
    if (contact !== null && contact !== undefined) linked.add(String(contact));
  }
  const consenting = await consentingContacts(crm, consentCondition(config, principal), [...linked]);
  return (record) => {
    const contact = record[linkingField];
    return contact === null || contact === undefined || consenting.has(String(contact));
  };
}

/** Which of `ids` are contacts matching `consent`; no row filter, since only ids come back. */
export async function consentingContacts(
  crm: CrmConnector,
  consent: RowCondition,
  ids: readonly string[],
): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < ids.length; i += lookupChunk) {
    const chunk = ids.slice(i, i + lookupChunk);
    const page = await crm.query(consentObject, {
      fields: [],
      where: [{ field: 'id', op: 'in', value: chunk }, consent],
      limit: chunk.length,
    });
    for (const record of page.records) out.add(String(record.id));
  }
  return out;
}

/** Contacts looked up per query: the connectors' longest in-list. */
const lookupChunk = 1000;

/** Whether aggregates of `object` must check consent record by record (they cannot in the store). */
export function consentLinked(object: CrmObject): boolean {
  return linkedObjects.has(object);
}
