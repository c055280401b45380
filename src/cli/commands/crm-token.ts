import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, InputError } from '../../errors/index.js';
import { commandConfig, report, withCommonOptions, withSecrets, type CommonOptions } from '../context.js';

/** HubSpot private-app tokens: `pat-`, the data centre (`na1`, `eu1`, …) and a UUID. */
const tokenShape = /^pat-[a-z]{2,4}\d{1,2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `gatehouse crm token import <file>`: the HubSpot private app's access token into the secret store,
 * where the connector reads it for every call. From a file, never an argument (shell history, `ps`).
 */
export function registerCrmTokenCommand(program: Command): void {
  const crm = program.commands.find((command) => command.name() === 'crm');
  if (!crm) throw new TypeError('register the crm commands before crm token');
  withCommonOptions(
    crm
      .command('token')
      .description("the HubSpot private app's access token")
      .command('import')
      .description('store the token from a file in the secret store under crm.hubspot.tokenSecret')
      .argument('<file>', 'file holding the private-app token (pat-…)')
      .option('--replace', 'replace a token already stored (rotation)'),
  ).action(async (file: string, options: CommonOptions & { replace?: boolean }) => {
    const config = commandConfig(options);
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch {
      throw new InputError(`${file} cannot be read`);
    }
    if (!tokenShape.test(token)) {
      throw new InputError(`${file} does not hold a HubSpot private-app token (pat-<region>-<uuid>)`);
    }
    const name = config.crm.hubspot.tokenSecret;
    const stored = await withSecrets(config, async (secrets) => {
      if (options.replace) await secrets.delete(name);
      return secrets.putIfAbsent(name, Buffer.from(token));
    });
    if (Buffer.from(stored).toString('utf8') !== token) {
      throw new ConfigError(`a different token is stored as ${name} already; pass --replace to replace it`);
    }
    report(options, `stored the HubSpot token as ${name}`, { secret: name });
  });
}
