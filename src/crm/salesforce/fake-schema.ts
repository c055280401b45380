import type { CrmObject } from '../types.js';

/**
 * The org the Salesforce fake pretends to be: standard objects with the fields a sales org has (plus
 * the Gatehouse custom fields the connected-app guide in README.md asks for), their describe metadata as
 * the REST API documents it, and where each field's value lives in the fake's store. Relationship paths
 * (`Account.Owner.Email`) are the ones the default mapping reads.
 */

/** Field types of the describe payload (DescribeFieldResult.type) that this org uses. */
export type SfFieldType =
  | 'id'
  | 'string'
  | 'textarea'
  | 'email'
  | 'phone'
  | 'picklist'
  | 'currency'
  | 'double'
  | 'date'
  | 'datetime'
  | 'reference'
  | 'boolean';

export interface FakeField {
  readonly name: string;
  readonly type: SfFieldType;
  readonly label: string;
  /** SQL over the object's table in the fake's store; constant text written here, never input. */
  readonly sql: string;
  /** The embedded CRM field a write of it sets (absent: read-only). */
  readonly writes?: string;
  readonly length?: number;
  readonly encrypted?: boolean;
  readonly complianceGroup?: string;
  readonly securityClassification?: string;
  readonly referenceTo?: readonly string[];
  readonly relationshipName?: string;
  readonly nillable?: boolean;
}

export interface FakeObject {
  readonly name: string;
  readonly label: string;
  readonly keyPrefix: string;
  readonly table: string;
  /** The embedded object writes go to; absent for objects the fake serves read-only. */
  readonly embedded?: CrmObject;
  readonly fields: readonly FakeField[];
  /** Relationship paths a query may select or filter on, with the SQL of their value. */
  readonly paths: Readonly<Record<string, { readonly type: SfFieldType; readonly sql: string }>>;
}

const system: FakeField[] = [
  { name: 'Id', type: 'id', label: 'Record ID', sql: 'id', length: 18, nillable: false },
  { name: 'CreatedDate', type: 'datetime', label: 'Created Date', sql: 'created_at', nillable: false },
  {
    name: 'LastModifiedDate',
    type: 'datetime',
    label: 'Last Modified Date',
    sql: 'updated_at',
    nillable: false,
  },
];
const accountPaths = {
  'Account.Gatehouse_Territory__c': { type: 'string', sql: 'territory' },
  'Account.Owner.Email': { type: 'email', sql: 'owner' },
  'Account.Name': { type: 'string', sql: `(select a.name from crm_accounts a where a.id = account_id)` },
} as const;

export const fakeObjects: readonly FakeObject[] = [
  {
    name: 'Account',
    label: 'Account',
    keyPrefix: '001',
    table: 'crm_accounts',
    embedded: 'account',
    fields: [
      ...system,
      {
        name: 'Name',
        type: 'string',
        label: 'Account Name',
        sql: 'name',
        writes: 'name',
        length: 255,
        nillable: false,
      },
      {
        name: 'Industry',
        type: 'picklist',
        label: 'Industry',
        sql: 'industry',
        writes: 'industry',
        length: 255,
      },
      {
        name: 'AnnualRevenue',
        type: 'currency',
        label: 'Annual Revenue',
        sql: 'annual_revenue',
        writes: 'annual_revenue',
        securityClassification: 'Confidential',
      },
      {
        name: 'OwnerId',
        type: 'reference',
        label: 'Owner ID',
        sql: `(select u.id from fake_sf_users u where u.email = owner)`,
        writes: 'owner',
        referenceTo: ['User'],
        relationshipName: 'Owner',
        nillable: false,
      },
      {
        name: 'Gatehouse_Territory__c',
        type: 'picklist',
        label: 'Territory',
        sql: 'territory',
        writes: 'territory',
        length: 16,
      },
      {
        name: 'Tax_Id__c',
        type: 'string',
        label: 'Tax ID',
        sql: 'null',
        length: 32,
        encrypted: true,
        securityClassification: 'Restricted',
      },
    ],
    paths: { 'Owner.Email': { type: 'email', sql: 'owner' } },
  },
  {
    name: 'Contact',
    label: 'Contact',
    keyPrefix: '003',
    table: 'crm_contacts',
    embedded: 'contact',
    fields: [
      ...system,
      {
        name: 'FirstName',
        type: 'string',
        label: 'First Name',
        sql: 'first_name',
        writes: 'first_name',
        length: 40,
      },
      {
        name: 'LastName',
        type: 'string',
        label: 'Last Name',
        sql: 'last_name',
        writes: 'last_name',
        length: 80,
        nillable: false,
      },
      { name: 'Title', type: 'string', label: 'Title', sql: 'title', writes: 'title', length: 128 },
      {
        name: 'AccountId',
        type: 'reference',
        label: 'Account ID',
        sql: 'account_id',
        writes: 'account_id',
        referenceTo: ['Account'],
        relationshipName: 'Account',
      },
      {
        name: 'Email',
        type: 'email',
        label: 'Email',
        sql: 'email',
        writes: 'email',
        length: 80,
        complianceGroup: 'PII;GDPR',
      },
      {
        name: 'Phone',
        type: 'phone',
        label: 'Business Phone',
        sql: 'phone',
        writes: 'phone',
        length: 40,
        complianceGroup: 'PII',
      },
      {
        name: 'MobilePhone',
        type: 'phone',
        label: 'Mobile Phone',
        sql: 'null',
        length: 40,
        complianceGroup: 'PII;GDPR',
      },
      {
        name: 'Birthdate',
        type: 'date',
        label: 'Birthdate',
        sql: 'date_of_birth',
        writes: 'date_of_birth',
        complianceGroup: 'PII;GDPR',
        securityClassification: 'Confidential',
      },
      {
        name: 'National_Id__c',
        type: 'string',
        label: 'National ID',
        sql: 'national_id',
        writes: 'national_id',
        length: 32,
        encrypted: true,
        complianceGroup: 'PII;GDPR',
        securityClassification: 'Restricted',
      },
      {
        name: 'Gatehouse_Consent__c',
        type: 'textarea',
        label: 'Consent Purposes',
        sql: 'consent',
        writes: 'consent',
        length: 512,
      },
    ],
    paths: accountPaths,
  },
  {
    name: 'Opportunity',
    label: 'Opportunity',
    keyPrefix: '006',
    table: 'crm_opportunities',
    embedded: 'opportunity',
    fields: [
      ...system,
      {
        name: 'Name',
        type: 'string',
        label: 'Name',
        sql: 'name',
        writes: 'name',
        length: 120,
        nillable: false,
      },
      {
        name: 'AccountId',
        type: 'reference',
        label: 'Account ID',
        sql: 'account_id',
        writes: 'account_id',
        referenceTo: ['Account'],
        relationshipName: 'Account',
      },
      {
        name: 'StageName',
        type: 'picklist',
        label: 'Stage',
        sql: 'stage',
        writes: 'stage',
        length: 255,
        nillable: false,
      },
      {
        name: 'Amount',
        type: 'currency',
        label: 'Amount',
        sql: 'amount',
        writes: 'amount',
        securityClassification: 'Confidential',
      },
      {
        name: 'CloseDate',
        type: 'date',
        label: 'Close Date',
        sql: 'close_date',
        writes: 'close_date',
        nillable: false,
      },
    ],
    paths: accountPaths,
  },
  {
    name: 'Task',
    label: 'Task',
    // Task's prefix is 00T; the fake keeps the ids of the shared seed, whose notes start with 002.
    keyPrefix: '002',
    table: 'crm_notes',
    embedded: 'note',
    fields: [
      ...system,
      { name: 'Subject', type: 'string', label: 'Subject', sql: `'Call'`, length: 255 },
      {
        name: 'Description',
        type: 'textarea',
        label: 'Comments',
        sql: 'body',
        writes: 'body',
        length: 32_000,
      },
      {
        name: 'Gatehouse_Author__c',
        type: 'email',
        label: 'Written By',
        sql: 'author',
        writes: 'author',
        length: 254,
      },
      {
        name: 'WhoId',
        type: 'reference',
        label: 'Name ID',
        sql: 'contact_id',
        writes: 'contact_id',
        referenceTo: ['Contact'],
        relationshipName: 'Who',
      },
      {
        name: 'WhatId',
        type: 'reference',
        label: 'Related To ID',
        sql: 'coalesce(opportunity_id, account_id)',
        writes: 'what',
        referenceTo: ['Account', 'Opportunity'],
        relationshipName: 'What',
      },
      {
        name: 'AccountId',
        type: 'reference',
        label: 'Account ID',
        sql: 'account_id',
        referenceTo: ['Account'],
        relationshipName: 'Account',
      },
    ],
    paths: accountPaths,
  },
  {
    name: 'User',
    label: 'User',
    keyPrefix: '005',
    table: 'fake_sf_users',
    fields: [
      ...system,
      { name: 'Username', type: 'string', label: 'Username', sql: 'username', length: 80, nillable: false },
      { name: 'Email', type: 'email', label: 'Email', sql: 'email', length: 128, nillable: false },
      {
        name: 'FederationIdentifier',
        type: 'string',
        label: 'Federation ID',
        sql: 'federation_id',
        length: 512,
      },
      { name: 'IsActive', type: 'boolean', label: 'Active', sql: 'is_active', nillable: false },
      { name: 'Gatehouse_Territory__c', type: 'picklist', label: 'Territory', sql: 'territory', length: 16 },
    ],
    paths: {},
  },
];

export function fakeObject(name: string): FakeObject | undefined {
  return fakeObjects.find((object) => object.name.toLowerCase() === name.toLowerCase());
}
