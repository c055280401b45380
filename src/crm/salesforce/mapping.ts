import type { CrmObject } from '../types.js';

/**
 * The default mapping of Gatehouse's objects onto a Salesforce org's standard objects. A field is a
 * SOQL path (`Account.Owner.Email` for a child's owner, which follows its account as in the embedded
 * CRM) and, when Gatehouse may write it, the sObject field a write sets. Territory, consent and the
 * note's author are custom fields the org adds (README.md, "Connecting Salesforce").
 */

export interface SalesforceObjectMapping {
  readonly sobject: string;
  readonly fields: Readonly<Record<string, { readonly path: string; readonly write?: string }>>;
}

const direct = (path: string) => ({ path, write: path });
const readOnly = (path: string) => ({ path });
const system = {
  id: readOnly('Id'),
  created_at: readOnly('CreatedDate'),
  updated_at: readOnly('LastModifiedDate'),
};
const inherited = {
  territory: readOnly('Account.Gatehouse_Territory__c'),
  owner: readOnly('Account.Owner.Email'),
};

export const defaultSalesforceMapping: Readonly<Record<CrmObject, SalesforceObjectMapping>> = {
  account: {
    sobject: 'Account',
    fields: {
      ...system,
      territory: direct('Gatehouse_Territory__c'),
      // Read as the owner's e-mail; written as the OwnerId of the active user with that e-mail.
      owner: { path: 'Owner.Email', write: 'OwnerId' },
      name: direct('Name'),
      industry: direct('Industry'),
      annual_revenue: direct('AnnualRevenue'),
    },
  },
  contact: {
    sobject: 'Contact',
    fields: {
      ...system,
      ...inherited,
      first_name: direct('FirstName'),
      last_name: direct('LastName'),
      title: direct('Title'),
      account_id: direct('AccountId'),
      email: direct('Email'),
      phone: direct('Phone'),
      date_of_birth: direct('Birthdate'),
      national_id: direct('National_Id__c'),
      consent: direct('Gatehouse_Consent__c'),
    },
  },
  opportunity: {
    sobject: 'Opportunity',
    fields: {
      ...system,
      ...inherited,
      name: direct('Name'),
      account_id: direct('AccountId'),
      stage: direct('StageName'),
      amount: direct('Amount'),
      close_date: direct('CloseDate'),
    },
  },
  // Notes are Tasks (call logs): Description is the text, WhoId the contact, WhatId the opportunity
  // (or the account when there is none), and AccountId, which Salesforce derives, the account.
  note: {
    sobject: 'Task',
    fields: {
      ...system,
      ...inherited,
      body: direct('Description'),
      author: direct('Gatehouse_Author__c'),
      account_id: readOnly('AccountId'),
      contact_id: direct('WhoId'),
      opportunity_id: direct('WhatId'),
    },
  },
};
