import type { CrmObject, DataClass, FieldMeta, ObjectMeta } from './types.js';

/**
 * Field metadata of the embedded CRM: the one place that says which fields exist, what they hold and
 * how sensitive they are. The query builder only ever sees names that are in this table.
 */

/** How a field may be written: by the connector only, by the caller, or derived from the parent account. */
export type WriteMode = 'system' | 'required' | 'optional' | 'derived';

export interface FieldSpec extends FieldMeta {
  readonly write: WriteMode;
  /** For `id` fields that point at another record. */
  readonly references?: CrmObject;
  /** Longest accepted string value. */
  readonly maxLength?: number;
  /**
   * Encrypted at rest (AES-256-GCM, src/crm/field-crypto.ts): the classes that need it, national ids,
   * payment data, health data and dates of birth. Only equality can be asked of it, through its blind index.
   */
  readonly encrypted?: true;
}

export interface ObjectSpec {
  readonly object: CrmObject;
  readonly plural: string;
  readonly table: CrmTable;
  /** Salesforce key prefix: every id of the object starts with it. */
  readonly prefix: string;
  readonly fields: ReadonlyMap<string, FieldSpec>;
  readonly meta: ObjectMeta;
}

export type CrmTable = 'crm_accounts' | 'crm_contacts' | 'crm_opportunities' | 'crm_notes';

export const territories = ['EMEA', 'NA', 'APAC'] as const;
export type Territory = (typeof territories)[number];

type Def = [
  name: string,
  type: FieldMeta['type'],
  dataClass: DataClass,
  label: string,
  write: WriteMode,
  extra?: Partial<FieldSpec>,
];

const text = { maxLength: 255 };
const ref = (object: CrmObject): Partial<FieldSpec> => ({ references: object, maxLength: 18 });

function head(ownership: 'own' | 'inherited'): Def[] {
  const mode: WriteMode = ownership === 'own' ? 'required' : 'derived';
  return [
    ['id', 'id', 'internal', 'Record ID', 'system'],
    ['territory', 'string', 'internal', 'Territory', mode, { maxLength: 16 }],
    ['owner', 'string', 'internal', 'Owner', mode, { maxLength: 254 }],
  ];
}

const tail: Def[] = [
  ['created_at', 'datetime', 'internal', 'Created', 'system'],
  ['updated_at', 'datetime', 'internal', 'Last modified', 'system'],
];

const definitions: Record<CrmObject, { plural: string; table: CrmTable; prefix: string; fields: Def[] }> = {
  account: {
    plural: 'accounts',
    table: 'crm_accounts',
    prefix: '001',
    fields: [
      ...head('own'),
      ['name', 'string', 'internal', 'Account name', 'required', text],
      ['industry', 'string', 'public', 'Industry', 'optional', text],
      ['annual_revenue', 'number', 'financial', 'Annual revenue', 'optional'],
      ...tail,
    ],
  },
  contact: {
    plural: 'contacts',
    table: 'crm_contacts',
    prefix: '003',
    fields: [
      ...head('inherited'),
      ['first_name', 'string', 'internal', 'First name', 'required', text],
      ['last_name', 'string', 'internal', 'Last name', 'required', text],
      ['title', 'string', 'internal', 'Title', 'optional', text],
      ['account_id', 'id', 'internal', 'Account ID', 'required', ref('account')],
      ['email', 'string', 'pii', 'Email', 'optional', { maxLength: 254 }],
      ['phone', 'string', 'pii', 'Phone', 'optional', { maxLength: 32 }],
      ['date_of_birth', 'date', 'pii', 'Date of birth', 'optional', { encrypted: true }],
      ['national_id', 'string', 'pii', 'National ID', 'optional', { maxLength: 32, encrypted: true }],
      // A sorted JSON array of purpose codes; the gateway filters on it, no fieldset exposes it by default.
      ['consent', 'string', 'internal', 'Consent purposes', 'optional', { maxLength: 512 }],
      ...tail,
    ],
  },
  opportunity: {
    plural: 'opportunities',
    table: 'crm_opportunities',
    prefix: '006',
    fields: [
      ...head('inherited'),
      ['name', 'string', 'internal', 'Opportunity name', 'required', text],
      ['account_id', 'id', 'internal', 'Account ID', 'required', ref('account')],
      ['stage', 'string', 'internal', 'Stage', 'required', { maxLength: 64 }],
      ['amount', 'number', 'financial', 'Amount', 'optional'],
      ['close_date', 'date', 'internal', 'Close date', 'required'],
      ...tail,
    ],
  },
  note: {
    plural: 'notes',
    table: 'crm_notes',
    prefix: '002',
    fields: [
      ...head('inherited'),
      ['body', 'string', 'internal', 'Body', 'required', { maxLength: 32_000 }],
      ['author', 'string', 'internal', 'Author', 'required', { maxLength: 254 }],
      ['account_id', 'id', 'internal', 'Account ID', 'optional', ref('account')],
      ['contact_id', 'id', 'internal', 'Contact ID', 'optional', ref('contact')],
      ['opportunity_id', 'id', 'internal', 'Opportunity ID', 'optional', ref('opportunity')],
      ...tail,
    ],
  },
};

function build(object: CrmObject): ObjectSpec {
  const { plural, table, prefix, fields: defs } = definitions[object];
  const fields = new Map<string, FieldSpec>();
  for (const [name, type, dataClass, label, write, extra] of defs) {
    fields.set(name, Object.freeze({ name, type, dataClass, label, write, ...extra }));
  }
  const meta: ObjectMeta = Object.freeze({
    object,
    plural,
    fields: Object.freeze(
      [...fields.values()].map(({ name, type, dataClass, label }) =>
        Object.freeze({ name, type, dataClass, label }),
      ),
    ),
  });
  return Object.freeze({ object, plural, table, prefix, fields, meta });
}

export const crmObjects: readonly CrmObject[] = Object.freeze(['account', 'contact', 'opportunity', 'note']);

const specs: Readonly<Record<CrmObject, ObjectSpec>> = Object.freeze({
  account: build('account'),
  contact: build('contact'),
  opportunity: build('opportunity'),
  note: build('note'),
});

/** The spec of an object; a name that is not a CrmObject is a caller's mistake. */
export function specOf(object: CrmObject): ObjectSpec {
  const spec = Object.hasOwn(specs, object) ? specs[object] : undefined;
  if (!spec) throw new TypeError(`unknown CRM object: ${String(object).slice(0, 32)}`);
  return spec;
}

/** The fields of an object that are encrypted at rest. */
export function encryptedFields(spec: ObjectSpec): FieldSpec[] {
  return [...spec.fields.values()].filter((field) => field.encrypted);
}

/** Every encrypted field of the embedded CRM, as object and field. */
export function encryptedFieldRefs(): { object: CrmObject; field: string }[] {
  return crmObjects.flatMap((object) =>
    encryptedFields(specs[object]).map((f) => ({ object, field: f.name })),
  );
}

/** `contacts` → `contact`; undefined for anything else (including `constructor`, `__proto__`). */
export function objectFromPlural(plural: string): CrmObject | undefined {
  return crmObjects.find((object) => specs[object].plural === plural);
}
