import { z } from 'zod';

const objectName = z.enum(['account', 'contact', 'opportunity', 'note']);
const dataClass = z.enum(['public', 'internal', 'pii', 'financial', 'health', 'secret']);
// A name in the secret store, or a Vault KV v2 reference read at run time (`vault:kv/data/path#field`).
const secretName = z
  .string()
  .regex(
    /^([a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*|vault:[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*#[A-Za-z0-9._-]+)$/,
    {
      message:
        'must be a secret name such as crm/salesforce/private-key, or vault:kv/data/gatehouse/crm#field',
    },
  );

/**
 * How one Gatehouse object maps onto the connected CRM, over the connector's defaults for the
 * standard objects: the vendor's object, a vendor field per Gatehouse field, and data classes for
 * vendor fields (a class set here wins over what the CRM's own metadata suggests).
 */
const objectMapping = z.strictObject({
  object: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_]{0,79}$/)
    .optional(),
  fields: z
    .record(z.string().regex(/^[a-z_]+$/), z.string().regex(/^[A-Za-z][A-Za-z0-9_.]{0,119}$/))
    .default({}),
  dataClasses: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_.]{0,119}$/), dataClass).default({}),
});

/**
 * The `crm` section: which CRM the gateway governs (the embedded one, or a real org through its
 * connector), how to reach it, and how its objects map onto Gatehouse's. Credentials are never here:
 * they live in the secret store under the names given.
 */
export const crmSchema = z.strictObject({
  kind: z.enum(['embedded', 'salesforce', 'hubspot']).default('embedded'),
  /**
   * PEM file of the CA that signed the CRM's certificate (a private CA, a TLS-inspecting proxy), added
   * to the system's; certificates are verified either way.
   */
  caFile: z.string().min(1).optional(),
  salesforce: z
    .strictObject({
      /** Where the JWT bearer token request goes: login.salesforce.com, test.salesforce.com or My Domain. */
      loginUrl: z.url().default('https://login.salesforce.com'),
      /** REST API version of every call. */
      apiVersion: z
        .string()
        .regex(/^\d{2,3}\.0$/, { message: 'must look like 62.0' })
        .default('62.0'),
      /** The connected app's consumer key (the `iss` of the JWT assertion); not a secret. */
      clientId: z.string().min(1).optional(),
      /** The integration user the connected app acts as (the `sub` of the JWT assertion). */
      username: z.string().min(1).optional(),
      /** Secret-store name of the PEM private key whose certificate the connected app holds. */
      privateKeySecret: secretName.default('crm/salesforce/private-key'),
      /** Percent of the org's daily API requests kept in reserve: calls are refused (503) beyond the rest. */
      dailyReservePercent: z.number().min(0).max(90).default(10),
      /** A Salesforce call taking longer fails (and counts towards the circuit breaker). */
      timeoutMs: z.number().int().min(500).max(120_000).default(10_000),
      /** Which CRM user a Gatehouse user is: by e-mail or by the user's FederationIdentifier (SSO id). */
      identityMatch: z.enum(['email', 'federationIdentifier']).default('email'),
      /** How often the CRM users' territory and owner attributes are read again. */
      identityRefreshSeconds: z.number().int().min(30).max(86_400).default(900),
    })
    .prefault({}),
  hubspot: z
    .strictObject({
      /** HubSpot's API host; only a fake on loopback differs (demo mode sets it). */
      baseUrl: z.url().default('https://api.hubapi.com'),
      /** Secret-store name of the private app's access token. */
      tokenSecret: secretName.default('crm/hubspot/token'),
      /** Calls kept back from the portal's daily limit: once only these are left, calls are refused (429). */
      dailyReserve: z.number().int().min(0).max(1_000_000).default(1000),
      /** How often the HubSpot owners (who a Gatehouse user is, and their team as territory) are read again. */
      ownerRefreshSeconds: z.number().int().min(30).max(86_400).default(900),
      /** A HubSpot call taking longer fails (and counts towards the circuit breaker). */
      timeoutMs: z.number().int().min(500).max(120_000).default(10_000),
    })
    .prefault({}),
  mapping: z.partialRecord(objectName, objectMapping).default({}),
});

export type CrmConfig = z.infer<typeof crmSchema>;
