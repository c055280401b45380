/** Retention decisions: pure functions of the configured days per data class and the clock. */
import type { RetentionConfig } from '../config/index.js';

const day = 86_400_000;

/** The shortest retention among `classes`, in days; undefined when none of them has one. */
export function retentionDaysOf(
  retention: Pick<RetentionConfig, 'days'>,
  classes: readonly string[],
): number | undefined {
  const days = classes
    .map((c) => retention.days[c as keyof RetentionConfig['days']])
    .filter((d): d is number => d !== undefined);
  return days.length === 0 ? undefined : Math.min(...days);
}

/** When data of `classes` stored at `at` expires (ISO 8601), or undefined when it is kept. */
export function expiryOf(
  retention: Pick<RetentionConfig, 'days'>,
  classes: readonly string[],
  at: Date,
): string | undefined {
  const days = retentionDaysOf(retention, classes);
  return days === undefined ? undefined : new Date(at.getTime() + days * day).toISOString();
}

/**
 * The data classes an audit event's body reveals, from the CRM fields it names (`fields`) and the class
 * of each field; an event that names none reveals nothing past the log's own retention.
 */
export function eventClasses(
  fields: string | undefined,
  resourceType: string,
  fieldClass: (object: string, field: string) => string | undefined,
): string[] {
  if (!fields) return [];
  const classes = new Set<string>();
  for (const field of fields.split(',')) {
    const found = fieldClass(resourceType, field);
    if (found) classes.add(found);
  }
  return [...classes].sort();
}
