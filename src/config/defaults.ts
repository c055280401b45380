/** The embedded-mode defaults: fieldsets, roles and demo users of CONTRACT.md. */
export const defaultScopes = {
  'read:account.basic': { object: 'account', fields: ['name', 'industry', 'territory', 'owner'] },
  'read:account.financial': { object: 'account', fields: ['annual_revenue'] },
  'read:contact.basic': { object: 'contact', fields: ['first_name', 'last_name', 'title', 'account_id'] },
  'read:contact.reach': { object: 'contact', fields: ['email', 'phone'] },
  'read:contact.pii': {
    object: 'contact',
    fields: ['email', 'phone', 'date_of_birth', 'national_id'],
  },
  'read:opportunity.basic': {
    object: 'opportunity',
    fields: ['name', 'account_id', 'stage', 'close_date', 'owner'],
  },
  'read:opportunity.financial': { object: 'opportunity', fields: ['amount'] },
  'read:opportunity.aggregate': {
    object: 'opportunity',
    fields: ['stage', 'amount', 'owner', 'close_date'],
  },
  'read:note.basic': {
    object: 'note',
    fields: ['body', 'author', 'account_id', 'contact_id', 'opportunity_id', 'created_at'],
  },
  'write:contact.note': { object: 'note', fields: ['body', 'contact_id', 'account_id'] },
  'write:opportunity.note': { object: 'note', fields: ['body', 'opportunity_id', 'account_id'] },
} as const;

const repScopes = [
  'read:account.basic',
  'read:contact.basic',
  'read:contact.reach',
  'read:opportunity.basic',
  'read:note.basic',
  'write:contact.note',
  'write:opportunity.note',
  'app:store',
];

/** Manager-level CRM scopes: a rep may hold them briefly by elevation, and reviewers approve them. */
const elevatableScopes = [
  'read:account.financial',
  'read:contact.pii',
  'read:opportunity.financial',
  'read:opportunity.aggregate',
];

/** `maker` (registering one's own apps through the `console` client) is open to every role. */
export const defaultRoles = {
  sales_rep: {
    scopes: [...repScopes, 'maker'],
    elevate: elevatableScopes,
    masks: { 'contact.phone': 'last4', 'contact.national_id': 'null', 'contact.date_of_birth': 'null' },
  },
  sales_manager: {
    scopes: [
      ...repScopes,
      'read:account.financial',
      'read:contact.pii',
      'read:opportunity.financial',
      'read:opportunity.aggregate',
      'maker',
    ],
    masks: { 'contact.national_id': 'last4' },
  },
  auditor: { scopes: ['audit:read', 'maker'], masks: {} },
  admin: { scopes: ['admin', 'maker'], masks: {} },
  reviewer: { scopes: ['review', 'maker'], masks: {}, reviews: elevatableScopes },
} as const;

export const defaultDemoUsers = {
  alice: { email: 'alice@example.com', name: 'Alice Adams', role: 'sales_rep', territory: 'EMEA' },
  bob: { email: 'bob@example.com', name: 'Bob Brown', role: 'sales_manager', territory: 'EMEA' },
  erin: { email: 'erin@example.com', name: 'Erin Evans', role: 'sales_rep', territory: 'NA' },
  carol: { email: 'carol@example.com', name: 'Carol Clark', role: 'auditor' },
  dave: { email: 'dave@example.com', name: 'Dave Davis', role: 'admin' },
  rita: { email: 'rita@example.com', name: 'Rita Reyes', role: 'reviewer' },
} as const;

/** The consent purpose vocabulary (`gateway.consent.purposes`); app manifests name one of these. */
export const defaultConsentPurposes: readonly string[] = ['analytics', 'marketing', 'sales_outreach'];

/**
 * What `serve --demo` sets unless the configuration file does: a person trying the demo at 3 a.m. on a
 * Sunday is inside working hours (every day, all day, so the off-hours rule never fires on them), and
 * browsing a few pages of contacts stays under the bulk-export guard (500 of the 2,000 seeded contacts).
 * Containment is shown on purpose, by `gatehouse drill mass-export`.
 */
export const demoProfile: Readonly<Record<string, unknown>> = {
  'detect.workingHours.default.days': ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
  'detect.workingHours.default.start': '00:00',
  'detect.workingHours.default.end': '00:00',
  'limits.bulkExport.minimum': 500,
};
