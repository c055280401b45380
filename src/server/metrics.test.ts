import { describe, expect, it } from 'vitest';
import { recordsReadBy } from './metrics.js';

const classes: Record<string, string> = { first_name: 'internal', email: 'pii', amount: 'financial' };
const classesOf = (object: string, fields: readonly string[]) =>
  object === 'contact' || object === 'opportunity'
    ? [...new Set(fields.map((f) => classes[f] ?? 'internal'))]
    : undefined;
const read = {
  action: 'crm.list',
  outcome: 'allow',
  app_id: 'call-notes',
  resource_type: 'contact',
  record_count: 7,
};

describe('gatehouse_records_read_total', () => {
  it("counts an allowed read's records once, under the most sensitive class of its fields", () => {
    expect(recordsReadBy({ ...read, fields: 'email,first_name' }, classesOf)).toEqual({
      app: 'call-notes',
      data_class: 'pii',
      records: 7,
    });
    expect(recordsReadBy({ ...read, fields: 'first_name' }, classesOf)?.data_class).toBe('internal');
  });

  it('counts nothing for a refused read, a write or an answer without records', () => {
    expect(recordsReadBy({ ...read, outcome: 'deny', fields: 'email' }, classesOf)).toBeUndefined();
    expect(recordsReadBy({ ...read, action: 'crm.update', fields: 'email' }, classesOf)).toBeUndefined();
    expect(recordsReadBy({ ...read, record_count: 0, fields: 'email' }, classesOf)).toBeUndefined();
  });

  it('counts a read whose object or fields it cannot classify as internal', () => {
    expect(recordsReadBy({ ...read, resource_type: 'accounts' }, classesOf)?.data_class).toBe('internal');
  });
});
