import type { DataClass } from '../types.js';

/** What Salesforce's metadata says about a field: describe's type and `encrypted`, and its data classification. */
export interface VendorFieldMeta {
  name: string;
  label: string;
  type: string;
  encrypted: boolean;
  /** FieldDefinition.ComplianceGroup: semicolon-separated (`PII;GDPR`). */
  complianceGroup?: string;
  /** FieldDefinition.SecurityClassification (data sensitivity level): Public … MissionCritical. */
  securityClassification?: string;
}

const order: readonly DataClass[] = ['public', 'internal', 'pii', 'financial', 'health', 'secret'];

/** The more sensitive of two data classes. */
export function strongerClass(a: DataClass, b: DataClass): DataClass {
  return order.indexOf(a) >= order.indexOf(b) ? a : b;
}

/**
 * The data class a field's Salesforce metadata suggests, or undefined when it says nothing sensitive.
 * Compliance groups name the regime (HIPAA: health, PCI: financial, PII/GDPR/CCPA: personal data); an
 * encrypted field or a Restricted / Mission Critical sensitivity level is at least personal data.
 */
export function classifyVendorField(field: VendorFieldMeta): DataClass | undefined {
  const groups = (field.complianceGroup ?? '').split(';').map((g) => g.trim().toUpperCase());
  const level = (field.securityClassification ?? '').toLowerCase();
  let found: DataClass | undefined;
  const raise = (to: DataClass) => (found = found ? strongerClass(found, to) : to);
  if (groups.includes('HIPAA')) raise('health');
  if (groups.includes('PCI')) raise('financial');
  if (groups.some((g) => ['PII', 'GDPR', 'CCPA', 'COPPA'].includes(g))) raise('pii');
  if (field.encrypted || level === 'restricted' || level === 'missioncritical') raise('pii');
  if (level === 'confidential') raise('internal');
  return found;
}
