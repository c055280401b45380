import { crmObjects, type CrmConnector, type CrmObject } from '../crm/index.js';
import { scanText, type DetectorKind } from '../dlp/index.js';
import { isSampled, type Evidence } from './classes.js';
import { classifyDb } from './tables.js';
import type { Db } from '../store/index.js';

/**
 * DLP sampling: real values of every text field of an object, read through the connector (so a
 * Salesforce or HubSpot connector is sampled the same way), scanned and reduced to counts at once. No
 * value leaves this function: not in the result, not in the store, not in a log.
 */

export interface FieldSample {
  readonly object: CrmObject;
  readonly field: string;
  /** Non-empty values read. */
  readonly sampled: number;
  readonly evidence: Evidence;
}

const pageSize = 500;

/** The first `size` records of `object` (by id), every text field of each. */
export async function sampleObject(
  connector: CrmConnector,
  object: CrmObject,
  size: number,
): Promise<{ records: number; fields: FieldSample[] }> {
  if (!Number.isSafeInteger(size) || size < 1) throw new TypeError('size must be a positive integer');
  const fields = connector
    .describe(object)
    .fields.filter(isSampled)
    .map((f) => f.name);
  const counts = new Map(fields.map((f) => [f, { sampled: 0, evidence: {} as Evidence }]));
  let records = 0;
  let cursor: string | undefined;
  do {
    const page = await connector.query(object, {
      fields,
      where: [],
      limit: Math.min(pageSize, size - records),
      ...(cursor ? { cursor } : {}),
    });
    for (const record of page.records) {
      for (const field of fields) {
        const value = record[field];
        if (typeof value !== 'string' || value.trim() === '') continue;
        const tally = counts.get(field)!;
        tally.sampled++;
        const kinds = new Set<DetectorKind>(scanText(value).map((f) => f.kind));
        for (const kind of kinds) tally.evidence[kind] = (tally.evidence[kind] ?? 0) + 1;
      }
    }
    records += page.records.length;
    cursor = page.nextCursor;
  } while (cursor && records < size);
  return { records, fields: fields.map((field) => ({ object, field, ...counts.get(field)! })) };
}

/** Replaces the stored samples of the objects sampled. */
export async function storeSamples(db: Db, samples: readonly FieldSample[], now: Date): Promise<void> {
  const objects = [...new Set(samples.map((s) => s.object))];
  if (objects.length === 0) return;
  await classifyDb(db)
    .transaction()
    .execute(async (trx) => {
      await trx.deleteFrom('classify_samples').where('object', 'in', objects).execute();
      await trx
        .insertInto('classify_samples')
        .values(
          samples.map((s) => ({
            object: s.object,
            field: s.field,
            sampled: s.sampled,
            evidence: JSON.stringify(s.evidence),
            sampled_at: now.toISOString(),
          })),
        )
        .execute();
    });
}

export interface SamplingOptions {
  /** Objects to sample; every CRM object by default. */
  readonly objects?: readonly CrmObject[];
  /** Records per object; default 200. */
  readonly size?: number;
  readonly now?: Date;
  /** Called after each object with objects done and in all. */
  readonly onProgress?: (done: number, total: number) => void;
}

export const defaultSampleSize = 200;

/** Samples the objects through the connector and stores the counts; answers how many records were read. */
export async function sampleFields(
  db: Db,
  connector: CrmConnector,
  options: SamplingOptions = {},
): Promise<{ records: number }> {
  const objects = options.objects ?? crmObjects;
  const samples: FieldSample[] = [];
  let records = 0;
  for (const [i, object] of objects.entries()) {
    const result = await sampleObject(connector, object, options.size ?? defaultSampleSize);
    samples.push(...result.fields);
    records += result.records;
    options.onProgress?.(i + 1, objects.length);
  }
  await storeSamples(db, samples, options.now ?? new Date());
  return { records };
}
