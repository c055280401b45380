import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { ConfigError } from '../errors/index.js';

/**
 * The connection pool of the HTTP CRM connectors when `crm.caFile` names a CA: that CA trusted beside
 * the system's, verification on. Undefined without one (fetch's own pool, the system CAs).
 */
export function crmDispatcher(caFile: string | undefined): Dispatcher | undefined {
  if (caFile === undefined) return undefined;
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (cause) {
    throw new ConfigError(`config: crm.caFile ${caFile} cannot be read`, { cause });
  }
  return new Agent({ connect: { ca: [...rootCertificates, ca], rejectUnauthorized: true } });
}
