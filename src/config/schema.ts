import { z } from 'zod';

const objectName = z.enum(['account', 'contact', 'opportunity', 'note']);
const maskName = z.enum(['none', 'last4', 'domain', 'hash', 'null']);
const scopeName = z.string().regex(/^(read|write):(account|contact|opportunity|note)\.[a-z_]+$/, {
  message: 'must look like read:contact.basic (no wildcards)',
});

/** A fieldset: the fields of one object that one scope grants. */
const fieldset = z.strictObject({
  object: objectName,
  fields: z.array(z.string().regex(/^[a-z_]+$/)).min(1),
});

const role = z.strictObject({
  /** Scopes a user of this role may ever hold; a token gets requested ∩ app-approved ∩ these. */
  scopes: z.array(z.string()).default([]),
  /** ABAC row filter: `territory` limits every CRM read to the user's own territory. */
  rowFilter: z.enum(['territory', 'none']).default('territory'),
  /** Masks by `object.field`; a field not named here leaves unmasked. */
  masks: z.record(z.string().regex(/^[a-z]+\.[a-z_]+$/), maskName).default({}),
});

const demoUser = z.strictObject({
  email: z.email(),
  name: z.string(),
  role: z.string(),
  territory: z.enum(['EMEA', 'NA', 'APAC']).optional(),
});

export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./.gatehouse'),
  demo: z.boolean().default(false),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.coerce.number().int().min(0).max(65535).default(8080),
      /** The URL clients use to reach this node; derived from host and port when absent. */
      publicUrl: z.url().optional(),
      bodyLimitBytes: z.number().int().positive().max(10_485_760).default(65_536),
      shutdownGraceMs: z.number().int().positive().default(10_000),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** `postgres://…` for scale-out; the SQLite file in the data dir when absent. */
      url: z.string().optional(),
    })
    .prefault({}),
  redis: z.strictObject({ url: z.string().optional() }).prefault({}),
  idp: z
    .strictObject({
      /** Issuer of the company IdP; the built-in development IdP at `<publicUrl>/idp` when absent. */
      issuer: z.url().optional(),
      /** Audience the IdP's ID tokens carry for Gatehouse (its client id at the IdP). */
      audience: z.string().default('gatehouse'),
      claims: z
        .strictObject({
          role: z.string().default('gatehouse_role'),
          territory: z.string().default('territory'),
        })
        .prefault({}),
      /** Largest accepted age of a subject ID token, in seconds. */
      maxIdTokenAgeSeconds: z.number().int().positive().default(3600),
    })
    .prefault({}),
  broker: z
    .strictObject({
      accessTokenTtlSeconds: z.number().int().min(30).max(900).default(600),
      audience: z.string().default('gatehouse-gateway'),
    })
    .prefault({}),
  gateway: z
    .strictObject({
      maxPageSize: z.number().int().positive().max(1000).default(200),
      defaultPageSize: z.number().int().positive().default(50),
    })
    .prefault({}),
  scopes: z.record(scopeName, fieldset),
  roles: z.record(z.string(), role),
  demoUsers: z.record(z.string(), demoUser),
});

export type Config = z.infer<typeof configSchema>;
export type ObjectName = z.infer<typeof objectName>;
export type MaskName = z.infer<typeof maskName>;
export type RoleConfig = z.infer<typeof role>;
export type DemoUser = z.infer<typeof demoUser>;
