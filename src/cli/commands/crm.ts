import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import type { Command } from 'commander';
import type { CrmObject, CrmSurvey, ObjectMeta } from '../../crm/index.js';
import { ConfigError, InputError } from '../../errors/index.js';
import { commandConfig, report, withCommonOptions, withSecrets, type CommonOptions } from '../context.js';

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
    const config = commandConfig(options);
    const { openStore } = await import('../../store/index.js');
    const { openSecretStore } = await import('../../secrets/index.js');
    const { createCrmConnector, crmObjects } = await import('../../crm/index.js');
    const store = await openStore(config);
    try {
      const connected = await createCrmConnector(config, {
        db: store.db,
        secrets: await openSecretStore(store.db, config.dataDir),
      });
      try {
        const surveys: CrmSurvey[] = connected.connector.survey
          ? await connected.connector.survey()
          : crmObjects.map((object) => embeddedSurvey(object, connected.connector.describe(object)));
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
      } finally {
        await connected.close();
      }
    } finally {
      await store.close();
    }
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
