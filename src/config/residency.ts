import { z } from 'zod';

export const regionName = z.string().regex(/^[A-Z][A-Z0-9_]{0,15}$/, {
  message: 'must be 1-16 upper-case letters, digits or _ (EU, US, APAC)',
});

/**
 * The `compliance.residency` section: where records live, derived from one row field every CRM object
 * carries (a record takes it from its account), and where Gatehouse itself runs and stores. A value no
 * region lists has no region: wherever a residency condition applies, such a record is hidden (fail
 * closed), since no transfer rule can be said to allow it.
 */
export const residencySchema = z
  .strictObject({
    /** The row field a record's region comes from (inherited from the record's account). */
    field: z
      .string()
      .regex(/^[a-z_]+$/)
      .default('territory'),
    /** Region → the values of `field` that place a record in it. */
    regions: z
      .record(regionName, z.array(z.string().min(1)).min(1))
      .default({ EU: ['EMEA'], US: ['NA'], APAC: ['APAC'] }),
    /**
     * Where Gatehouse runs and keeps its stores (the governed app store among them): the region of an
     * app whose plan declares none.
     */
    home: regionName.default('EU'),
    /**
     * Regions outside `home` that events may be forwarded to (alert sinks: `detect.alerts.*.region`),
     * each under its legal transfer mechanism; a sink in any other region is refused at start.
     */
    forwardTo: z
      .array(z.strictObject({ region: regionName, mechanism: z.string().trim().min(3).max(200) }))
      .max(16)
      .default([]),
  })
  .refine(
    (r) => {
      const values = Object.values(r.regions).flat();
      return new Set(values).size === values.length;
    },
    { message: 'a value may place a record in one region only' },
  );

export type ResidencyConfig = z.infer<typeof residencySchema>;
