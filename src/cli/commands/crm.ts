import { readFileSync } from 'node:fs';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { CrmObject, CrmSurvey, ObjectMeta } from '../../crm/index.js';
import { ConfigError, InputError } from '../../errors/index.js';
import {
  commandConfig,
  progressBar,
  report,
  withCommonOptions,
  withModules,
  withSecrets,
  type CommonOptions,
} from '../context.js';

/**
 * `gatehouse crm describe`: what the connected CRM offers per Gatehouse object and how it maps, with
 * sensitive fields nothing maps onto flagged; `gatehouse crm key import`: the connected app's private
 * key into the secret store, where the connector reads it (never configuration).
 */
export function registerCrmCommands(program: Command): void {
  const crm = program
    .command('crm')
    .description('the CRM behind the gateway (crm.kind): what it offers and how it maps');

  withCommonOptions(
    crm
      .command('describe')
      .description(
        "what the connected CRM offers for each object, how its fields map onto Gatehouse's, and which sensitive fields are unmapped",
      ),
  ).action(async (options: CommonOptions) => {
    const { crmObjects } = await import('../../crm/index.js');
    await withModules(options, async ({ config, crm: connect }) => {
      const { connector } = await connect();
      const surveys: CrmSurvey[] = connector.survey
        ? await connector.survey()
        : crmObjects.map((object) => embeddedSurvey(object, connector.describe(object)));
      const unmapped = surveys.flatMap((survey) =>
        survey.fields
          .filter((field) => field.suggested && !field.mappedTo)
          .map((field) => ({
            object: survey.object,
            vendorObject: survey.vendorObject,
            field: field.name,
            suggested: field.suggested,
          })),
      );
      report(options, describeText(config.crm.kind, surveys, unmapped.length), {
        crm: config.crm.kind,
        objects: surveys,
        unmapped_sensitive: unmapped,
      });
    });
  });

  withCommonOptions(
    crm
      .command('key')
      .description("the connected app's private key (Salesforce JWT bearer flow)")
      .command('import')
      .description('store a PEM private key in the secret store under crm.salesforce.privateKeySecret')
      .argument('<file>', 'PEM file of the private key whose certificate the connected app holds')
      .option('--replace', 'replace a key already stored'),
  ).action(async (file: string, options: CommonOptions & { replace?: boolean }) => {
    const config = commandConfig(options);
    let pem: Buffer;
    try {
      pem = readFileSync(file);
      createPrivateKey(pem);
    } catch {
      throw new InputError(`${file} is not a readable PEM private key`);
    }
    const name = config.crm.salesforce.privateKeySecret;
    const stored = await withSecrets(config, async (secrets) => {
      if (options.replace) await secrets.delete(name);
      return secrets.putIfAbsent(name, pem);
    });
    if (!Buffer.from(stored).equals(pem)) {
      throw new ConfigError(`a different key is stored as ${name} already; pass --replace to replace it`);
    }
    report(options, `stored the private key as ${name}`, { secret: name });
  });

  withCommonOptions(
    crm
      .command('rotate-field-key')
      .description(
        'give an encrypted field of the embedded CRM a new data key, re-encrypt its values under it, and retire the old key once no value uses it',
      )
      .argument(
        '<field>',
        'the encrypted field, as object.field (contact.national_id, contact.date_of_birth)',
      ),
  ).action(async (field: string, options: CommonOptions) => {
    await reencryptCommand(options, field, true);
  });

  withCommonOptions(
    crm
      .command('reencrypt')
      .description(
        'finish moving the values of encrypted fields onto their current key (after an interrupted rotation); retires unused old keys',
      )
      .argument('[field]', 'one encrypted field as object.field; all when absent'),
  ).action(async (field: string | undefined, options: CommonOptions) => {
    await reencryptCommand(options, field, false);
  });
}

/** Rotates (when asked) and re-encrypts with progress on stderr; both steps go into the audit trail. */
async function reencryptCommand(
  options: CommonOptions,
  name: string | undefined,
  rotate: boolean,
): Promise<void> {
  const [{ createFieldKeys, encryptedFieldRefs, reencryptFields }, { withCatalog }] = await Promise.all([
    import('../../crm/index.js'),
    import('./app.js'),
  ]);
  const only = name === undefined ? undefined : encryptedFieldRef(name, encryptedFieldRefs());
  await withCatalog(options, async ({ config, store, secrets, audit }) => {
    if (config.crm.kind !== 'embedded') {
      throw new ConfigError(`crm.kind is ${config.crm.kind}: only the embedded CRM encrypts fields itself`);
    }
    const keys = createFieldKeys(store.db, secrets);
    const actor = `os:${userInfo().username}`;
    const record = (action: string, resource: string, reason: string) =>
      audit.append({
        timestamp: new Date().toISOString(),
        actor_id: actor,
        actor_role: 'admin',
        app_id: '',
        action,
        resource_type: 'field',
        resource_id: resource,
        scope: '',
        request_id: `crm-${randomUUID()}`,
        trace_id: '',
        outcome: 'allow',
        reason,
      });
    let rotated: number | undefined;
    if (rotate && only) {
      rotated = await keys.rotate(only.object, only.field);
      await record('crm.field_key_rotate', `${only.object}.${only.field}`, `new data key v${rotated}`);
    }
    const bar = progressBar('re-encrypting');
    try {
      const reports = await reencryptFields(store.db, keys, {
        ...(only && { only }),
        onProgress: (p) => bar.update(p.done, p.total),
      });
      bar.stop();
      for (const r of reports) {
        await record(
          'crm.field_reencrypt',
          `${r.object}.${r.field}`,
          `values on key v${r.version}: ${r.sealed} plain sealed, ${r.reencrypted} re-encrypted; retired ${versionList(r.retired) || 'none'}; destroyed ${versionList(r.destroyed) || 'none'}`,
        );
      }
      const lines = reports.map(
        (r) =>
          `${r.object}.${r.field}: key v${r.version}; ${r.reencrypted} values re-encrypted, ${r.sealed} plain values sealed; ` +
          (r.retired.length > 0 ? `retired ${versionList(r.retired)}` : 'no key retired') +
          (r.destroyed.length > 0 ? `; destroyed the key of ${versionList(r.destroyed)}` : ''),
      );
      const fields = await Promise.all(
        reports.map(async (r) => ({ ...r, versions: await keys.versions(r.object, r.field) })),
      );
      report(options, lines.join('\n'), { ...(rotated !== undefined && { rotated }), fields });
    } finally {
      bar.stop();
    }
  });
}

/** `contact.national_id` → its object and field, when it names an encrypted field. */
function encryptedFieldRef(
  name: string,
  refs: readonly { object: CrmObject; field: string }[],
): { object: CrmObject; field: string } {
  const found = refs.find((r) => `${r.object}.${r.field}` === name);
  if (!found) {
    const known = refs.map((r) => `${r.object}.${r.field}`).join(', ');
    throw new InputError(`${name.slice(0, 64)} is not an encrypted field (encrypted: ${known})`);
  }
  return found;
}

function embeddedSurvey(object: CrmObject, meta: ObjectMeta): CrmSurvey {
  return {
    object,
    vendorObject: meta.plural,
    fields: meta.fields.map((field) => ({
      name: field.name,
      label: field.label,
      type: field.type,
      mappedTo: field.name,
      suggested: field.dataClass,
    })),
  };
}

function describeText(kind: string, surveys: readonly CrmSurvey[], unmapped: number): string {
  const lines = [`CRM: ${kind}`];
  for (const survey of surveys) {
    lines.push('', `${survey.object} ← ${survey.vendorObject}`);
    for (const field of survey.fields) {
      const flag = field.suggested && !field.mappedTo ? '!' : ' ';
      const notes = [
        field.type,
        field.encrypted ? 'encrypted' : '',
        field.classification ?? '',
        field.mappedTo
          ? `→ ${field.mappedTo}`
          : field.suggested
            ? `unmapped, sensitive (${field.suggested})`
            : 'unmapped',
      ].filter(Boolean);
      lines.push(`${flag} ${field.name.padEnd(28)} ${notes.join('  ')}`);
    }
  }
  lines.push(
    '',
    unmapped === 0 ? 'no unmapped sensitive fields' : `${unmapped} sensitive field(s) not mapped (marked !)`,
  );
  return lines.join('\n');
}

/** `v1, v2`: key versions as the CLI names them. */
function versionList(versions: readonly number[]): string {
  return versions.map((v) => `v${v}`).join(', ');
}
