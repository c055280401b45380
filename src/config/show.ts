import type { ConfigOrigin } from './load.js';
import type { Config } from './schema.js';

/** One value of the effective configuration, as `gatehouse config show` prints it. */
export interface ConfigEntry {
  key: string;
  value: unknown;
  source: ConfigOrigin;
}

const hidden = '(hidden)';
/** Keys that hold a secret; `gateway.dlp.*.secret` names the DLP kind, not a secret. */
const secretKey = /(^|\.)(secret|clientSecret|password|masterKey)$/;

/** The configuration as flat entries, leaves in schema order, secrets and URL passwords hidden. */
export function configEntries(config: Config, originOf: (key: string) => ConfigOrigin): ConfigEntry[] {
  return leaves(config, '').map(([key, value]) => ({
    key,
    value: shownValue(key, value),
    source: originOf(key),
  }));
}

function leaves(value: unknown, prefix: string): Array<[string, unknown]> {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    Object.keys(value).length === 0
  ) {
    return [[prefix, value]];
  }
  return Object.entries(value).flatMap(([key, child]) => leaves(child, prefix ? `${prefix}.${key}` : key));
}

function shownValue(key: string, value: unknown): unknown {
  if (secretKey.test(key) && !key.startsWith('gateway.dlp.')) return hidden;
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*@/i.test(value)) {
    const url = new URL(value);
    if (url.password) url.password = hidden;
    return url.toString();
  }
  return value;
}
