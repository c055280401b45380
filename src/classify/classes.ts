import type { DataClass, FieldMeta } from '../crm/index.js';
import type { DetectorKind } from '../dlp/index.js';

/**
 * How sampled values refine a field's class: pure decisions, no I/O. Metadata describes what a
 * structured field holds; only sampling can tell what people typed into free text, so a free-text
 * field that holds e-mails or phone numbers is pii however its metadata classes it. Sampling only ever
 * raises a class; lowering one is an admin's override.
 */

/** Least to most sensitive, as the admission policies rank them. */
export const dataClasses: readonly DataClass[] = Object.freeze([
  'public',
  'internal',
  'pii',
  'financial',
  'health',
  'secret',
]);

export function isDataClass(value: unknown): value is DataClass {
  return typeof value === 'string' && (dataClasses as readonly string[]).includes(value);
}

export function moreSensitive(a: DataClass, b: DataClass): DataClass {
  return dataClasses.indexOf(b) > dataClasses.indexOf(a) ? b : a;
}

/** The class a DLP finding of each kind reveals. */
export const kindClass: Readonly<Record<DetectorKind, DataClass>> = {
  email: 'pii',
  phone: 'pii',
  us_ssn: 'pii',
  uk_nino: 'pii',
  payment_card: 'financial',
  iban: 'financial',
  secret: 'secret',
};

const freeTextNames: ReadonlySet<string> = new Set([
  'body',
  'notes',
  'note',
  'description',
  'comments',
  'comment',
  'details',
  'message',
  'text',
  'summary',
  'remarks',
]);

/** Fields whose values are typed by people, where anything can turn up. */
export function isFreeText(field: Pick<FieldMeta, 'name' | 'type'>): boolean {
  return field.type === 'string' && freeTextNames.has(field.name.toLowerCase());
}

/** Whether sampling reads a field at all: only text can hold what DLP detects. */
export function isSampled(field: Pick<FieldMeta, 'type'>): boolean {
  return field.type === 'string';
}

/** Values per detector kind. */
export type Evidence = Partial<Record<DetectorKind, number>>;

/** The class the sampled values call for, when they call for one above the metadata class. */
export function sampledClass(
  field: Pick<FieldMeta, 'name' | 'type' | 'dataClass'>,
  evidence: Evidence,
): DataClass | undefined {
  if (!isFreeText(field)) return undefined;
  let found: DataClass | undefined;
  for (const [kind, count] of Object.entries(evidence) as [DetectorKind, number][]) {
    if (count > 0) found = found ? moreSensitive(found, kindClass[kind]) : kindClass[kind];
  }
  return found && moreSensitive(field.dataClass, found) !== field.dataClass ? found : undefined;
}

/** An override wins; otherwise the more sensitive of metadata and sampling. */
export function effectiveClass(
  metadata: DataClass,
  sampled: DataClass | undefined,
  override: DataClass | undefined,
): DataClass {
  return override ?? (sampled ? moreSensitive(metadata, sampled) : metadata);
}
