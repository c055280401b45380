import {
  crmObjects,
  type CrmConnector,
  type CrmObject,
  type DataClass,
  type FieldMeta,
} from '../crm/index.js';
import { DETECTOR_KINDS, type DetectorKind } from '../dlp/index.js';
import type { Db } from '../store/index.js';
import { effectiveClass, isDataClass, sampledClass, type Evidence } from './classes.js';
import { classifyDb } from './tables.js';

/** One field: what its metadata says, what sampling found, what an admin decided, and the result. */
export interface FieldClassification {
  readonly object: CrmObject;
  readonly field: string;
  readonly type: FieldMeta['type'];
  readonly metadata: DataClass;
  /** The last sampling: values read and, per DLP kind, how many held it. Absent when never sampled. */
  readonly sample?: { readonly sampled: number; readonly evidence: Evidence; readonly at: string };
  /** The class the sampled values call for, when above the metadata class. */
  readonly sampled?: DataClass;
  readonly override?: {
    readonly dataClass: DataClass;
    readonly reason: string;
    readonly actor: string;
    readonly at: string;
  };
  readonly effective: DataClass;
}

/** Every field of the objects (all CRM objects by default), in metadata order. */
export async function classificationTable(
  db: Db,
  connector: CrmConnector,
  objects: readonly CrmObject[] = crmObjects,
): Promise<FieldClassification[]> {
  const cdb = classifyDb(db);
  const [samples, overrides] = await Promise.all([
    cdb
      .selectFrom('classify_samples')
      .select(['object', 'field', 'sampled', 'evidence', 'sampled_at'])
      .where('object', 'in', [...objects])
      .execute(),
    cdb
      .selectFrom('classify_overrides')
      .select(['object', 'field', 'data_class', 'reason', 'actor', 'created_at'])
      .where('object', 'in', [...objects])
      .execute(),
  ]);
  const sampleOf = new Map(samples.map((s) => [`${s.object}.${s.field}`, s]));
  const overrideOf = new Map(overrides.map((o) => [`${o.object}.${o.field}`, o]));

  const rows: FieldClassification[] = [];
  for (const object of objects) {
    for (const meta of connector.describe(object).fields) {
      const key = `${object}.${meta.name}`;
      const stored = sampleOf.get(key);
      const sample = stored && {
        sampled: Number(stored.sampled),
        evidence: parseEvidence(stored.evidence),
        at: stored.sampled_at,
      };
      const sampled = sample ? sampledClass(meta, sample.evidence) : undefined;
      const o = overrideOf.get(key);
      // A stored class that is not one of ours (edited by hand) is ignored rather than trusted.
      const override =
        o && isDataClass(o.data_class)
          ? { dataClass: o.data_class, reason: o.reason, actor: o.actor, at: o.created_at }
          : undefined;
      rows.push({
        object,
        field: meta.name,
        type: meta.type,
        metadata: meta.dataClass,
        ...(sample ? { sample } : {}),
        ...(sampled ? { sampled } : {}),
        ...(override ? { override } : {}),
        effective: effectiveClass(meta.dataClass, sampled, override?.dataClass),
      });
    }
  }
  return rows;
}

/**
 * `object.field` → effective class for every field of every CRM object: what the policy enrichment
 * (`ManifestContext.fieldClasses`, the runtime's `field_classes`) and the bulk-export guard should use.
 */
export async function effectiveClasses(db: Db, connector: CrmConnector): Promise<Record<string, DataClass>> {
  const classes: Record<string, DataClass> = {};
  for (const row of await classificationTable(db, connector))
    classes[`${row.object}.${row.field}`] = row.effective;
  return classes;
}

/** Stored evidence is read back defensively: known kinds and whole counts only. */
function parseEvidence(text: string): Evidence {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  const evidence: Evidence = {};
  if (typeof parsed !== 'object' || parsed === null) return evidence;
  for (const kind of DETECTOR_KINDS) {
    const count = (parsed as Record<string, unknown>)[kind];
    if (Number.isSafeInteger(count) && (count as number) > 0)
      evidence[kind as DetectorKind] = count as number;
  }
  return evidence;
}
