import { z } from 'zod';

const timeoutMs = z.number().int().min(100).max(60_000).default(5000);

/** Vault's login: an AppRole (role id in config, secret id in a file) or the pod's Kubernetes service account. */
const vaultAuth = z.union([
  z.strictObject({
    approle: z.strictObject({
      roleId: z.string().min(1),
      /** A file holding the secret id (delivered by the orchestrator), read at every login. */
      secretIdFile: z.string().min(1),
      mount: z
        .string()
        .regex(/^[a-z0-9_-]+$/)
        .default('approle'),
    }),
  }),
  z.strictObject({
    kubernetes: z.strictObject({
      role: z.string().min(1),
      jwtFile: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
      mount: z
        .string()
        .regex(/^[a-z0-9_-]+$/)
        .default('kubernetes'),
    }),
  }),
]);

/**
 * The key service: what wraps the data key of every stored secret, and where the master key lives.
 * `local`: a master key file (or GATEHOUSE_MASTER_KEY); `vault`: HashiCorp Vault Transit (and KV v2 for
 * `vault:` credential references); `kms`: AWS KMS, credentials from the AWS_* environment variables.
 */
export const secretsSchema = z.strictObject({
  keyService: z
    .discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('local'),
        /** The master key's file, best outside the data dir; `<dataDir>/master.key` when absent. */
        masterKeyFile: z.string().min(1).optional(),
      }),
      z.strictObject({
        kind: z.literal('vault'),
        url: z.url(),
        transitMount: z
          .string()
          .regex(/^[a-z0-9_-]+$/)
          .default('transit'),
        /** A Transit key created with `derived=true`: each secret's name is its derivation context. */
        transitKey: z.string().regex(/^[A-Za-z0-9._-]+$/),
        auth: vaultAuth,
        /** KV v2 mount of `vault:path#field` references that name no mount. */
        kvMount: z
          .string()
          .regex(/^[a-z0-9_-]+$/)
          .default('secret'),
        /** PEM file of the CA that signed Vault's certificate (the system CAs when absent). */
        caFile: z.string().min(1).optional(),
        namespace: z.string().min(1).optional(),
        timeoutMs,
      }),
      z.strictObject({
        kind: z.literal('kms'),
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: 'must be an AWS region such as eu-west-1' }),
        /** Key id, key ARN or alias (`alias/gatehouse`) of a symmetric ENCRYPT_DECRYPT key. */
        keyId: z.string().min(1),
        /** Another endpoint than `https://kms.<region>.amazonaws.com` (a VPC endpoint). */
        endpoint: z.url().optional(),
        timeoutMs,
      }),
    ])
    .default({ kind: 'local' }),
});

export type KeyServiceConfig = z.infer<typeof secretsSchema>['keyService'];
