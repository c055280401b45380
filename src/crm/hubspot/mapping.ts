import { specOf } from '../metadata.js';
import type { CrmObject, DataClass } from '../types.js';

/**
 * How Gatehouse's objects and fields map onto HubSpot's CRM v3 objects and properties. The defaults
 * cover the standard objects; `gatehouse_*` properties are custom properties a portal creates once
 * (README "Connecting HubSpot"), because HubSpot has no territory, and its search API cannot return
 * associations, so a deal's or note's parents are kept in properties next to the associations.
 */

export type ObjectType = 'companies' | 'contacts' | 'deals' | 'notes';

export const objectTypes: Readonly<Record<CrmObject, ObjectType>> = Object.freeze({
  account: 'companies',
  contact: 'contacts',
  opportunity: 'deals',
  note: 'notes',
});

/** field → property name; `id` is always `hs_object_id`. */
export type PropertyMap = Readonly<Record<string, string>>;

const shared = { territory: 'gatehouse_territory', owner: 'hubspot_owner_id', created_at: 'createdate' };

export const defaultPropertyMaps: Readonly<Record<CrmObject, PropertyMap>> = Object.freeze({
  account: {
    ...shared,
    name: 'name',
    industry: 'industry',
    annual_revenue: 'annualrevenue',
    updated_at: 'hs_lastmodifieddate',
  },
  contact: {
    ...shared,
    first_name: 'firstname',
    last_name: 'lastname',
    title: 'jobtitle',
    account_id: 'associatedcompanyid',
    email: 'email',
    phone: 'phone',
    date_of_birth: 'date_of_birth',
    national_id: 'gatehouse_national_id',
    consent: 'gatehouse_consent',
    // Contacts keep their modification time in `lastmodifieddate`, every other object in `hs_lastmodifieddate`.
    updated_at: 'lastmodifieddate',
  },
  opportunity: {
    ...shared,
    name: 'dealname',
    account_id: 'gatehouse_company_id',
    stage: 'dealstage',
    amount: 'amount',
    close_date: 'closedate',
    updated_at: 'hs_lastmodifieddate',
  },
  note: {
    ...shared,
    body: 'hs_note_body',
    author: 'gatehouse_author',
    account_id: 'gatehouse_company_id',
    contact_id: 'gatehouse_contact_id',
    opportunity_id: 'gatehouse_deal_id',
    created_at: 'hs_createdate',
    updated_at: 'hs_lastmodifieddate',
  },
});

/** HubSpot-defined association type ids (v4 associations) from a note to its parents. */
export const noteAssociationTypes: Readonly<Record<string, number>> = Object.freeze({
  account_id: 190,
  contact_id: 202,
  opportunity_id: 214,
});

/** The maps with configured overrides applied; an override may rename a property, never drop a field. */
export function propertyMaps(
  overrides: Partial<Record<CrmObject, Record<string, string>>> = {},
): Record<CrmObject, PropertyMap> {
  const out = {} as Record<CrmObject, PropertyMap>;
  for (const object of Object.keys(objectTypes) as CrmObject[]) {
    const merged = { ...defaultPropertyMaps[object], ...overrides[object] };
    for (const field of Object.keys(merged)) {
      if (field === 'id' || !specOf(object).fields.has(field)) {
        throw new TypeError(`crm.hubspot.properties.${object}: ${field} is not a Gatehouse field`);
      }
    }
    out[object] = Object.freeze(merged);
  }
  return out;
}

/** A property's metadata as HubSpot's properties API answers it (the parts classification reads). */
export interface PropertyDefinition {
  name: string;
  label: string;
  type: string;
  fieldType: string;
  hubspotDefined?: boolean;
  /** Set by portals with sensitive data enabled: `non_sensitive`, `sensitive` or `highly_sensitive`. */
  dataSensitivity?: string;
}

const rank: readonly DataClass[] = ['public', 'internal', 'pii', 'financial', 'health', 'secret'];

/**
 * The class HubSpot's own metadata implies for a property, if any: marked sensitive, or a field type
 * that holds contact details. It can only raise Gatehouse's class, never lower it.
 */
export function impliedClass(property: PropertyDefinition): DataClass | undefined {
  if (property.dataSensitivity === 'highly_sensitive') return 'secret';
  if (property.dataSensitivity === 'sensitive') return 'pii';
  if (property.fieldType === 'phonenumber' || property.type === 'phone_number') return 'pii';
  return undefined;
}

export function stricterClass(a: DataClass, b: DataClass | undefined): DataClass {
  return b !== undefined && rank.indexOf(b) > rank.indexOf(a) ? b : a;
}

/**
 * Gatehouse ids of HubSpot records: the object's key prefix, `0S` and the HubSpot id less one in base
 * 62 over ten characters, 15 in all, so they pass the gateway's id checks and sort like the HubSpot
 * ids. The seeded embedded CRM uses the same shape (from 0), so a demo on the fake shows the same ids.
 */
const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const bodyLength = 10;
const maxHubSpotId = 62n ** BigInt(bodyLength);

export function gatehouseId(object: CrmObject, hubspotId: string): string {
  if (!/^[1-9]\d{0,18}$/.test(hubspotId) || BigInt(hubspotId) > maxHubSpotId) {
    throw new Error(`HubSpot answered an id Gatehouse cannot represent for ${object}`);
  }
  let rest = BigInt(hubspotId) - 1n;
  let body = '';
  do {
    body = alphabet[Number(rest % 62n)] + body;
    rest /= 62n;
  } while (rest > 0n);
  return specOf(object).prefix + '0S' + body.padStart(bodyLength, '0');
}

/** The HubSpot id behind a Gatehouse id of `object`, or undefined for anything else. */
export function hubspotId(object: CrmObject, id: string): string | undefined {
  const prefix = specOf(object).prefix + '0S';
  if (typeof id !== 'string' || id.length !== prefix.length + bodyLength || !id.startsWith(prefix)) {
    return undefined;
  }
  let n = 0n;
  for (const ch of id.slice(prefix.length)) {
    const digit = alphabet.indexOf(ch);
    if (digit < 0) return undefined;
    n = n * 62n + BigInt(digit);
  }
  return (n + 1n).toString();
}
