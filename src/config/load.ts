import { existsSync, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { defaultDemoUsers, defaultRoles, defaultScopes } from './defaults.js';
import { configSchema, type Config } from './schema.js';

export interface ConfigSources {
  /** Path of a YAML or JSON file; `gatehouse.yaml`, `gatehouse.yml` or `gatehouse.json` in cwd when absent. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values under the file's: set where the file sets nothing (`demoProfile` for `serve --demo`). */
  profile?: Readonly<Record<string, unknown>>;
  /** Command-line flags, the strongest source. */
  overrides?: Record<string, unknown>;
  cwd?: string;
}

const fileNames = ['gatehouse.yaml', 'gatehouse.yml', 'gatehouse.json'];

/** Environment variables and the config key each one sets. */
const envKeys: ReadonlyArray<[string, string]> = [
  ['GATEHOUSE_DATA_DIR', 'dataDir'],
  ['GATEHOUSE_LOG_LEVEL', 'logLevel'],
  ['GATEHOUSE_LOG_FORMAT', 'logFormat'],
  ['GATEHOUSE_HOST', 'server.host'],
  ['PORT', 'server.port'],
  ['GATEHOUSE_PORT', 'server.port'],
  ['GATEHOUSE_PUBLIC_URL', 'server.publicUrl'],
  ['GATEHOUSE_METRICS_PORT', 'server.metricsPort'],
  ['GATEHOUSE_TRUSTED_PROXIES', 'server.trustedProxies'],
  ['GATEHOUSE_DATABASE_URL', 'database.url'],
  ['GATEHOUSE_REDIS_URL', 'redis.url'],
  ['GATEHOUSE_IDP_ISSUER', 'idp.issuer'],
  ['GATEHOUSE_IDP_CLIENT_SECRET', 'idp.clientSecret'],
  ['GATEHOUSE_TLS_CERT', 'server.tls.cert'],
  ['GATEHOUSE_TLS_KEY', 'server.tls.key'],
];

/** Maps whose entries a configuration file adds to or overrides one by one; `replace: true` swaps the whole map. */
const mergedMaps = ['scopes', 'roles', 'demoUsers'] as const;
const defaultMaps: Record<(typeof mergedMaps)[number], unknown> = {
  scopes: defaultScopes,
  roles: defaultRoles,
  demoUsers: defaultDemoUsers,
};

/** Where a value of the effective configuration came from. */
export type ConfigOrigin = 'default' | 'demo profile' | `file ${string}` | `env ${string}` | `flag ${string}`;

interface Layers {
  file: Record<string, unknown>;
  filePath: string | undefined;
  profile: string[];
  env: Array<[name: string, key: string]>;
  flags: Record<string, unknown>;
}

/**
 * Reads file, environment and flags (in that order of strength), validates strictly and freezes.
 * Throws ConfigError with one line naming the key and the problem.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  return explainConfig(sources).config;
}

/**
 * The configuration `loadConfig` answers, and for any dotted key the source that set it
 * (`gatehouse config show`).
 */
export function explainConfig(sources: ConfigSources = {}): {
  config: Config;
  originOf: (key: string) => ConfigOrigin;
} {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const filePath = configFilePath(sources.file ?? env.GATEHOUSE_CONFIG, cwd);
  const file = filePath ? readConfigFile(filePath) : {};
  // A copy: the dotted keys set below would otherwise write into the shared default maps, and every
  // later config of the process would start from them.
  const raw: Record<string, unknown> = structuredClone({ ...file, ...mergeMapsWithDefaults(file) });
  const layers: Layers = { file, filePath, profile: [], env: [], flags: {} };
  for (const [key, value] of Object.entries(sources.profile ?? {})) {
    if (!isSetIn(file, key)) {
      setPath(raw, key, value);
      layers.profile.push(key);
    }
  }
  for (const [name, key] of envKeys) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      setPath(raw, key, value);
      layers.env.push([name, key]);
    }
  }
  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) {
      setPath(raw, key, value);
      layers.flags[key] = value;
    }
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssue(parsed.error.issues[0]));
  const config = parsed.data;
  config.dataDir = resolve(cwd, config.dataDir);
  return { config: deepFreeze(config), originOf: (key) => originOf(key, layers) };
}

/** Each of `mergedMaps`: the defaults with the file's entries over them, or with `replace: true` the file's alone. */
function mergeMapsWithDefaults(file: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const name of mergedMaps) {
    const given = file[name];
    if (given === undefined) {
      merged[name] = defaultMaps[name];
      continue;
    }
    if (!isMapping(given)) {
      throw new ConfigError(`config: ${name}: must be a mapping (add replace: true to replace the defaults)`);
    }
    const { replace, ...entries } = given;
    if (replace !== undefined && typeof replace !== 'boolean') {
      throw new ConfigError(`config: ${name}.replace: must be true or false`);
    }
    merged[name] = replace ? entries : mergeEntries(defaultMaps[name] as Record<string, unknown>, entries);
  }
  return merged;
}

/**
 * Key by key, and within an entry field by field: overriding `roles.sales_rep.scopes` keeps the default
 * masks of sales_rep, so an override never unmasks a field it did not mention.
 */
function mergeEntries(
  defaults: Record<string, unknown>,
  given: Record<string, unknown>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, entry] of Object.entries(given)) {
    const base = defaults[key];
    merged[key] = isMapping(base) && isMapping(entry) ? { ...base, ...entry } : entry;
  }
  return merged;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function originOf(key: string, layers: Layers): ConfigOrigin {
  const flag = Object.keys(layers.flags).find((set) => covers(set, key));
  if (flag) return `flag ${flag}`;
  const env = layers.env.findLast(([, set]) => covers(set, key));
  if (env) return `env ${env[0]}`;
  if (layers.filePath && isSetIn(layers.file, key)) return `file ${layers.filePath}`;
  if (layers.profile.some((set) => covers(set, key))) return 'demo profile';
  return 'default';
}

/** Setting `set` sets `key` too when it is the key itself or one of its parents. */
function covers(set: string, key: string): boolean {
  return key === set || key.startsWith(`${set}.`);
}

function isSetIn(tree: Record<string, unknown>, key: string): boolean {
  let node: unknown = tree;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return true;
    if (!Object.hasOwn(node, part)) return false;
    node = (node as Record<string, unknown>)[part];
  }
  return true;
}

/** The URL this node is reached at, and the issuer of the tokens it mints. */
export function publicUrl(config: Config, listeningPort?: number): string {
  if (config.server.publicUrl) return config.server.publicUrl.replace(/\/$/, '');
  const host = config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host;
  const scheme = config.server.tls ? 'https' : 'http';
  return `${scheme}://${host}:${listeningPort ?? config.server.port}`;
}

/**
 * Why this configuration must not start, or undefined: demo mode on a non-loopback address hands the
 * development IdP (anyone signs in as anyone) to the network.
 */
export function demoListenProblem(config: Config): string | undefined {
  if (!config.demo || config.server.unsafeDemoOnNetwork || isLoopbackHost(config.server.host))
    return undefined;
  return (
    `config: demo mode listens on loopback only, and ${config.server.host} is not loopback ` +
    '(the development IdP signs anyone in as any user); use 127.0.0.1, run the real mode with idp.issuer, ' +
    'or pass --unsafe-demo-on-network on a closed lab network'
  );
}

function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  return isIPv4(bare) && bare.startsWith('127.');
}

function configFilePath(file: string | undefined, cwd: string): string | undefined {
  return file ? resolve(cwd, file) : fileNames.map((n) => resolve(cwd, n)).find((p) => existsSync(p));
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`config: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`);
  }
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new ConfigError(
      `config: ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(cause as Error).message.split('\n')[0]}`,
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config: ${path} must hold a mapping of settings`);
  }
  return value as Record<string, unknown>;
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'config: invalid configuration';
  const key = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${key}.` : '';
    return `config: unknown key ${issue.keys.map((k) => prefix + k).join(', ')}; remove it or check its spelling`;
  }
  return `config: ${key}: ${issue.message}`;
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1) as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Sales users of the demo own the seeded accounts of their territory. */
export function demoSeedOwners(config: Config): { email: string; territory: 'EMEA' | 'NA' | 'APAC' }[] {
  return Object.values(config.demoUsers).flatMap((user) =>
    user.territory && config.roles[user.role]?.scopes.some((s) => s.startsWith('read:'))
      ? [{ email: user.email, territory: user.territory }]
      : [],
  );
}
