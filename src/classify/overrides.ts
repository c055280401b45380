import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../audit/index.js';
import { crmObjects, type CrmConnector, type CrmObject } from '../crm/index.js';
import { InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { dataClasses, isDataClass } from './classes.js';
import { classificationTable, type FieldClassification } from './table.js';
import { classifyDb, type ClassifyDb } from './tables.js';

/**
 * Admin overrides of a field's class. Each change is one row (the current override) and one audit
 * event (who, what, from which class to which, and why); the audit trail is the history. When the
 * audit event cannot be written, the change is undone: an override nobody can account for must not
 * stay in force.
 */

/** Where audit events go: the AuditLog of the server or of the CLI. */
export interface AuditSink {
  append(event: AuditEvent): Promise<unknown>;
}

export interface FieldRef {
  readonly object: CrmObject;
  readonly field: string;
}

const maxReason = 500;

/** `contact.email` → { object, field }, checked against the connector's metadata. */
export function parseFieldRef(text: string, connector: CrmConnector): FieldRef {
  const match = /^([a-z_]+)\.([a-z_][a-z0-9_]*)$/.exec(text);
  const object = match?.[1] as CrmObject | undefined;
  if (!match || !object || !crmObjects.includes(object)) {
    throw new InputError(
      `name a field as OBJECT.FIELD with OBJECT one of ${crmObjects.join(', ')} (e.g. note.body)`,
    );
  }
  const fields = connector.describe(object).fields.map((f) => f.name);
  const field = match[2] as string;
  if (!fields.includes(field)) {
    throw new InputError(`${object} has no field ${field}; its fields: ${fields.join(', ')}`);
  }
  return { object, field };
}

export interface OverrideRequest {
  readonly ref: FieldRef;
  /** The class to set; undefined clears the override. */
  readonly dataClass: string | undefined;
  readonly reason: string;
  /** Who decided, as it goes into the audit event. */
  readonly actor: string;
  readonly now?: Date;
}

export async function changeOverride(
  db: Db,
  connector: CrmConnector,
  audit: AuditSink,
  request: OverrideRequest,
): Promise<FieldClassification> {
  const { ref, dataClass, actor } = request;
  if (dataClass !== undefined && !isDataClass(dataClass)) {
    throw new InputError(
      `unknown data class ${JSON.stringify(dataClass.slice(0, 32))}: use one of ${dataClasses.join(', ')}`,
    );
  }
  // eslint-disable-next-line no-control-regex
  const reason = request.reason.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (reason.length < 3) throw new InputError('--reason must say why (at least 3 characters)');
  if (reason.length > maxReason) throw new InputError(`--reason is limited to ${maxReason} characters`);
  if (typeof actor !== 'string' || actor === '') throw new TypeError('actor must be a non-empty string');
  const now = request.now ?? new Date();

  const cdb = classifyDb(db);
  const [before] = await classificationTable(db, connector, [ref.object]).then((rows) =>
    rows.filter((r) => r.field === ref.field),
  );
  if (!before) throw new TypeError('parseFieldRef first: the field is not in the metadata');
  if (dataClass === undefined && !before.override) {
    throw new InputError(`${ref.object}.${ref.field} has no override to clear`);
  }
  const previous = await cdb
    .selectFrom('classify_overrides')
    .selectAll()
    .where('object', '=', ref.object)
    .where('field', '=', ref.field)
    .executeTakeFirst();

  await replace(
    cdb,
    ref,
    dataClass === undefined
      ? undefined
      : { data_class: dataClass, reason, actor, created_at: now.toISOString() },
  );
  const [after] = (await classificationTable(db, connector, [ref.object])).filter(
    (r) => r.field === ref.field,
  );
  try {
    await audit.append({
      timestamp: now.toISOString(),
      actor_id: actor,
      actor_role: 'admin',
      app_id: '',
      action: dataClass === undefined ? 'classify.override_clear' : 'classify.override',
      resource_type: 'field',
      resource_id: `${ref.object}.${ref.field}`,
      scope: '',
      request_id: `classify-${randomUUID()}`,
      trace_id: '',
      outcome: 'allow',
      reason: `effective class ${before.effective} -> ${after!.effective} (metadata ${before.metadata}): ${reason}`,
    });
  } catch (error) {
    await replace(cdb, ref, previous);
    throw error;
  }
  return after!;
}

async function replace(
  cdb: ClassifyDb,
  ref: FieldRef,
  row: { data_class: string; reason: string; actor: string; created_at: string } | undefined,
): Promise<void> {
  await cdb.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('classify_overrides')
      .where('object', '=', ref.object)
      .where('field', '=', ref.field)
      .execute();
    if (row) {
      await trx
        .insertInto('classify_overrides')
        .values({
          object: ref.object,
          field: ref.field,
          data_class: row.data_class,
          reason: row.reason,
          actor: row.actor,
          created_at: row.created_at,
        })
        .execute();
    }
  });
}
