/** Picklists and phrase parts for synthetic CRM data (Salesforce's standard picklist values where there is one). */

export const industries = [
  'Agriculture',
  'Apparel',
  'Banking',
  'Biotechnology',
  'Chemicals',
  'Communications',
  'Construction',
  'Consulting',
  'Education',
  'Electronics',
  'Energy',
  'Engineering',
  'Entertainment',
  'Environmental',
  'Finance',
  'Food & Beverage',
  'Government',
  'Healthcare',
  'Hospitality',
  'Insurance',
  'Machinery',
  'Manufacturing',
  'Media',
  'Not For Profit',
  'Recreation',
  'Retail',
  'Shipping',
  'Technology',
  'Telecommunications',
  'Transportation',
  'Utilities',
] as const;

/** Opportunity stages with their share of a pipeline, and whether they are closed. */
export const stages = [
  { name: 'Prospecting', weight: 16, closed: false },
  { name: 'Qualification', weight: 14, closed: false },
  { name: 'Needs Analysis', weight: 12, closed: false },
  { name: 'Value Proposition', weight: 10, closed: false },
  { name: 'Proposal/Price Quote', weight: 10, closed: false },
  { name: 'Negotiation/Review', weight: 8, closed: false },
  { name: 'Closed Won', weight: 18, closed: true },
  { name: 'Closed Lost', weight: 12, closed: true },
] as const;

export const products = [
  'Platform licence',
  'Analytics add-on',
  'Support renewal',
  'Onboarding services',
  'Data migration',
  'Enterprise upgrade',
  'Seat expansion',
  'Managed service',
  'Training package',
  'Integration project',
] as const;

export const topics = [
  'pricing for next year',
  'the renewal timeline',
  'integration with their ERP',
  'a pilot in one region',
  'security questionnaire',
  'data residency requirements',
  'the implementation plan',
  'volume discounts',
  'a reference customer call',
  'their budget cycle',
] as const;

export const nextSteps = [
  'send a revised quote',
  'book a demo with IT',
  'share the security pack',
  'schedule a follow-up call',
  'introduce our solutions engineer',
  'draft the order form',
  'confirm stakeholders',
] as const;
