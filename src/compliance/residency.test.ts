import { describe, expect, it } from 'vitest';
import { appResidency, regionOf, residencyConditions, transferOf } from './residency.js';

const config = {
  field: 'territory',
  regions: { EU: ['EMEA'], US: ['NA'], APAC: ['APAC'] },
  home: 'EU',
  forwardTo: [],
};

describe('residency facts', () => {
  it('places a record by its field, and a value no region lists in none', () => {
    expect(regionOf(config, 'EMEA')).toBe('EU');
    expect(regionOf(config, 'LATAM')).toBe('');
  });

  it('turns region conditions into conditions on the field, leaving others alone', () => {
    const where = residencyConditions(config, 'region', [
      { field: 'territory', op: 'eq', value: 'NA' },
      { field: 'region', op: 'in', value: ['APAC', 'US'] },
    ]);
    expect(where).toEqual([
      { field: 'territory', op: 'eq', value: 'NA' },
      { field: 'territory', op: 'in', value: ['APAC', 'NA'] },
    ]);
    // A region listing no value matches nothing (an empty `in`), never everything.
    expect(residencyConditions(config, 'region', [{ field: 'region', op: 'eq', value: 'MARS' }])).toEqual([
      { field: 'territory', op: 'in', value: [] },
    ]);
  });

  it('puts an app without a declared region at home, and names only transfers out of its region', () => {
    expect(appResidency(config, undefined)).toEqual({
      region: 'EU',
      transfers: [],
      regions: ['APAC', 'EU', 'US'],
    });
    expect(transferOf(appResidency(config, undefined))).toBeUndefined();
    expect(transferOf(appResidency(config, { region: 'US', transfers: ['EU', 'US'] }))).toBe('EU>US');
  });
});
