import { isIP } from 'node:net';
import { z } from 'zod';
import { catalogSchema } from './catalog.js';
import { crmSchema } from './crm.js';
import { detectSchema } from './detect.js';
import { residencySchema } from './residency.js';
import { appStoreSchema, dsrSchema, retentionSchema } from './privacy.js';
import { secretsSchema } from './secrets.js';
import { defaultConsentPurposes } from './defaults.js';

const objectName = z.enum(['account', 'contact', 'opportunity', 'note']);
const maskName = z.enum(['none', 'last4', 'domain', 'hash', 'null']);
const scopeName = z.string().regex(/^(read|write):(account|contact|opportunity|note)\.[a-z_]+$/, {
  message: 'must look like read:contact.basic (no wildcards)',
});

/** `10.0.0.5`, `10.0.0.0/8`, `fd00::/8`: what Fastify's trustProxy (proxy-addr) takes. */
function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A fieldset: the fields of one object that one scope grants. */
const fieldset = z.strictObject({
  object: objectName,
  fields: z.array(z.string().regex(/^[a-z_]+$/)).min(1),
});

const crmScope = z
  .string()
  .regex(/^(read|write):[a-z]+\.[a-z_]+$/, { message: 'must be a CRM read: or write: scope' });
const role = z.strictObject({
  /** Scopes a user of this role may ever hold; a token gets requested ∩ app-approved ∩ these. */
  scopes: z.array(z.string()).default([]),
  /** Masks by `object.field`; a field not named here leaves unmasked. */
  masks: z.record(z.string().regex(/^[a-z]+\.[a-z_]+$/), maskName).default({}),
  /**
   * CRM scopes a user of this role may hold for a while through just-in-time elevation, once a
   * reviewer approves. Platform scopes (admin, review, audit:read, maker) are never elevatable.
   */
  elevate: z.array(crmScope).default([]),
  /** CRM scopes whose elevation requests this role may approve: its reviewer duty for that data. */
  reviews: z.array(crmScope).default([]),
});

/** The DLP detector kinds (src/dlp DETECTOR_KINDS; config depends on no module, a test keeps them equal). */
export const dlpKinds = ['email', 'phone', 'payment_card', 'iban', 'us_ssn', 'uk_nino', 'secret'] as const;
const dlpKind = z.enum(dlpKinds);
const incomingAction = z.enum(['allow', 'redact', 'refuse']);
const fieldRef = z.string().regex(/^[a-z]+\.[a-z_]+$/, { message: 'must look like note.body' });
const purposeName = z.string().regex(/^[a-z][a-z_]{1,39}$/, { message: 'must be a lower-case purpose code' });
const positive = z.number().int().positive();
/** A token bucket (src/limits TokenBucket): `burst` back to back, then `ratePerSecond` on average. */
const tokenBucket = z.strictObject({ burst: positive, ratePerSecond: z.number().positive().max(1_000_000) });

const gateway = z.strictObject({
  maxPageSize: z.number().int().positive().max(1000).default(200),
  defaultPageSize: z.number().int().positive().default(50),
  /** Free-text fields, `object.field`: DLP scans them on the way in and on the way out. */
  freeTextFields: z.array(fieldRef).default(['note.body']),
  dlp: z
    .strictObject({
      /** What a finding of each kind in incoming free text does: stored as is, redacted, or refused (422). */
      incoming: z
        .strictObject({
          email: incomingAction.default('allow'),
          phone: incomingAction.default('allow'),
          payment_card: incomingAction.default('refuse'),
          iban: incomingAction.default('refuse'),
          us_ssn: incomingAction.default('refuse'),
          uk_nino: incomingAction.default('refuse'),
          secret: incomingAction.default('refuse'),
        })
        .prefault({}),
      outgoing: z
        .strictObject({
          /** Kinds redacted from outgoing free text for every reader. */
          redact: z.array(dlpKind).default(['payment_card', 'iban', 'us_ssn', 'uk_nino', 'secret']),
          /**
           * Kinds redacted unless the reader may read the named field unmasked: a reader who may not see a
           * contact's phone does not get it from a note either.
           */
          unlessReadable: z
            .partialRecord(dlpKind, fieldRef)
            .default({ email: 'contact.email', phone: 'contact.phone' }),
        })
        .prefault({}),
    })
    .prefault({}),
  aggregate: z
    .strictObject({
      /** Groups of fewer records are suppressed: small groups single people out. */
      minGroupSize: z.number().int().min(1).default(5),
      /** More groups than this is refused (422): group by a field with fewer values. */
      maxGroups: z.number().int().min(1).max(10_000).default(1000),
    })
    .prefault({}),
  consent: z
    .strictObject({
      /** Contacts without consent for the app's purpose: left out of answers, or returned with personal fields nulled. */
      mode: z.enum(['exclude', 'mask']).default('exclude'),
      /** The purpose vocabulary; the `consent` column holds a sorted JSON array of some of these. */
      purposes: z
        .array(purposeName)
        .min(1)
        .max(8)
        .default([...defaultConsentPurposes]),
      /**
       * The purpose each app processes contacts for, unless its approved plan names a `consent_purpose`
       * (which wins). An app with neither has none and sees no contact.
       */
      appPurposes: z
        .record(z.string(), purposeName)
        .default({ 'call-notes': 'sales_outreach', 'pipeline-dashboard': 'analytics' }),
    })
    .refine((c) => Object.values(c.appPurposes).every((p) => c.purposes.includes(p)), {
      message: 'every app purpose must be one of gateway.consent.purposes',
    })
    .prefault({}),
  /** Objects a DELETE may remove (notes only by their author). */
  deletable: z.array(objectName).default(['note']),
  /** How long a table's size is reused by the bulk-export guard before it is counted again. */
  tableSizeCacheSeconds: z.number().int().min(0).max(3600).default(60),
  /** A list asking for more records than this is an export: Cedar is asked for action `export`. */
  exportAbove: z.number().int().min(1).max(1000).default(100),
});

/** Limits; a key left out takes its value from src/limits defaultLimitsConfig (the one place for them). */
const limits = z.strictObject({
  perApp: tokenBucket.optional(),
  perUser: tokenBucket.optional(),
  global: tokenBucket.optional(),
  dailyQuotaPerApp: positive.optional(),
  bulkExport: z
    .strictObject({
      windowSeconds: positive.optional(),
      fraction: z.number().gt(0).max(1).optional(),
      nonSensitiveFraction: z.number().gt(0).max(1).optional(),
      minimum: z.number().int().min(0).optional(),
      maxTracked: positive.optional(),
      perUserRecords: positive.optional(),
      planHeadroom: z.number().min(1).max(100).optional(),
    })
    .optional(),
  breaker: z
    .strictObject({ failureThreshold: positive.optional(), openSeconds: positive.optional() })
    .optional(),
});

const demoUser = z.strictObject({
  email: z.email(),
  name: z.string(),
  role: z.string(),
  territory: z.enum(['EMEA', 'NA', 'APAC']).optional(),
});

export const configSchema = z
  .strictObject({
    dataDir: z.string().min(1).default('./.gatehouse'),
    demo: z.boolean().default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `auto`: one human line per entry on a terminal, JSON lines otherwise (`--log-format`). */
    logFormat: z.enum(['auto', 'pretty', 'json']).default('auto'),
    server: z
      .strictObject({
        host: z.string().default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(8080),
        /** The URL clients use to reach this node; derived from host and port when absent. */
        publicUrl: z.url().optional(),
        bodyLimitBytes: z.number().int().positive().max(10_485_760).default(65_536),
        shutdownGraceMs: z.number().int().positive().default(10_000),
        /**
         * A separate listener (on `host`) that serves only /metrics, unauthenticated, for a scraper on a
         * private network; when absent /metrics is on the main listener and needs an `admin` token.
         */
        metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
        /**
         * Proxies (CIDRs or addresses) whose `X-Forwarded-For` is believed: the client is the right-most
         * hop not in this list. Empty: the socket's peer is the client and the header is ignored.
         */
        trustedProxies: z
          .preprocess(
            (value) => (typeof value === 'string' ? value.split(',').map((entry) => entry.trim()) : value),
            z.array(z.string().refine(isCidr, { message: 'must be an IP address or a CIDR block' })).max(64),
          )
          .default([]),
        /** Pending connections the kernel queues for accept (Node's default of 511 left bursts waiting). */
        backlog: z.number().int().min(1).max(65_535).default(4096),
        /** Open connections at most; more are closed at once rather than served slowly. */
        maxConnections: z.number().int().min(1).default(10_000),
        /** Requests served at once; more are answered 503 with Retry-After (health endpoints excepted). */
        maxInFlight: z.number().int().min(1).default(512),
        /** A request whose headers and body have not all arrived by then gets 408. */
        requestTimeoutMs: z.number().int().min(1000).default(30_000),
        /** Longest request URL accepted (414 above it). */
        maxUrlBytes: z.number().int().min(256).max(65_536).default(8192),
        /** Processes sharing the listener (`serve --workers N`, node:cluster); see README "Scale-out". */
        workers: z.coerce.number().int().min(1).max(64).default(1),
        /**
         * Lets demo mode listen beyond loopback. Its development IdP signs anyone in as any user, admin
         * included, so this is for a closed lab network only (`serve --demo --unsafe-demo-on-network`).
         */
        unsafeDemoOnNetwork: z.boolean().default(false),
        /**
         * HTTPS on the listener (TLS 1.2+): PEM certificate chain and key files, or a PKCS#12 file. The
         * files are read again when they change (a renewed certificate needs no restart).
         */
        tls: z
          .union([
            z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }),
            z.strictObject({ pfx: z.string().min(1), passphrase: z.string().optional() }),
          ])
          .optional(),
      })
      .prefault({}),
    database: z
      .strictObject({
        /** `postgres://…` for scale-out; the SQLite file in the data dir when absent. */
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// or postgresql:// URL' })
          .optional(),
        /** PostgreSQL: connections each node keeps open at most (plus one for the audit sequencer). */
        poolSize: z.number().int().min(2).max(200).default(10),
        /** PostgreSQL: a statement running longer is cancelled, so a stuck query fails instead of hanging. */
        statementTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        /**
         * PostgreSQL: a node holding the audit sequencer role that stops talking to the database this long
         * (paused, wedged) loses its session, and the role goes to another node.
         */
        sequencerLeaseMs: z.number().int().min(1000).max(300_000).default(15_000),
        /** TLS to PostgreSQL, the server's certificate verified against `ca` (a PEM file) or the system CAs. */
        tls: z.strictObject({ ca: z.string().min(1).optional() }).optional(),
      })
      .prefault({}),
    redis: z
      .strictObject({
        /** `redis://…` or `rediss://…` (TLS) for scale-out: limits, revocation fan-out, DPoP replay. */
        url: z
          .string()
          .regex(/^rediss?:\/\//, { message: 'must be a redis:// or rediss:// URL' })
          .optional(),
        /** Prefixes every key and channel, so several deployments can share one Redis. */
        keyPrefix: z
          .string()
          .regex(/^[A-Za-z0-9:._-]{1,64}$/, { message: 'must be 1-64 letters, digits or : . _ -' })
          .default('gatehouse:'),
        /**
         * Gateway nodes sharing this Redis. While Redis cannot answer, each node enforces this share
         * (1/expectedNodes) of every limit on its own, so the cluster as a whole stays within them.
         */
        expectedNodes: z.number().int().min(1).max(1000).default(3),
        /** A Redis command taking longer fails, and the node falls back as if Redis were down. */
        commandTimeoutMs: z.number().int().min(50).max(10_000).default(500),
        /** TLS to Redis (as rediss:// does), the certificate verified against `ca` (a PEM file) or the system CAs. */
        tls: z.strictObject({ ca: z.string().min(1).optional() }).optional(),
      })
      .prefault({}),
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
        /**
         * Secret of Gatehouse's client at the IdP (client_secret_basic) for the browser login; a public
         * client with PKCE when absent (the development IdP). Prefer GATEHOUSE_IDP_CLIENT_SECRET to a file.
         */
        clientSecret: z.string().min(1).optional(),
        /** Scopes the broker asks the IdP for when it signs a user in. */
        loginScope: z.string().default('openid email profile gatehouse'),
        /**
         * Strict (default): an ID token whose `email` is not `email_verified: true` is refused. Off: the
         * unverified e-mail is dropped and the user is known by `sub` alone.
         */
        requireVerifiedEmail: z.boolean().default(true),
      })
      .prefault({}),
    broker: z
      .strictObject({
        accessTokenTtlSeconds: z.number().int().min(30).max(900).default(600),
        audience: z.string().default('gatehouse-gateway'),
        /** A refresh token unused for this long dies (each rotation starts the idle time again). */
        refreshTokenIdleSeconds: z.number().int().min(60).default(86_400),
        /** A refresh-token family dies this long after the sign-in that started it, used or not. */
        refreshTokenAbsoluteSeconds: z.number().int().min(60).default(604_800),
        /** Lifetime of an authorization code issued to a microapp. */
        authorizationCodeTtlSeconds: z.number().int().min(10).max(600).default(60),
        /** Time a user has from /oauth/authorize to answering the consent screen. */
        loginTtlSeconds: z.number().int().min(60).max(3600).default(600),
        /** DPoP proofs must be issued within this many seconds of now (either side). */
        dpopProofWindowSeconds: z.number().int().min(5).max(300).default(60),
        /** How often each node reads new revocations from the database (a revocation holds within this). */
        revocationPollMs: z.number().int().min(50).max(1000).default(250),
        /** Tokens are refused (503) when revocations could not be read for this long. */
        revocationMaxStalenessSeconds: z.number().int().min(1).max(300).default(5),
        /** Longest life of an elevated (just-in-time) token, counted from the reviewer's approval. */
        elevationTtlSeconds: z.number().int().min(60).max(3600).default(900),
        /** A pending elevation request nobody reviewed expires after this long. */
        elevationRequestTtlSeconds: z.number().int().min(60).default(3600),
        /** Days between scheduled signing-key rotations; 0 rotates on demand only. */
        keyRotationDays: z.number().int().min(0).max(365).default(30),
        /** A new key is in the JWKS this long before it signs (longer than any JWKS cache). */
        keyPublishLeadSeconds: z.number().int().min(0).max(86_400).default(600),
        /** POST /oauth/token: token buckets per client id and per caller network (429 with Retry-After). */
        tokenRequestLimits: z
          .strictObject({
            perClient: tokenBucket.default({ burst: 600, ratePerSecond: 30 }),
            perNetwork: tokenBucket.default({ burst: 600, ratePerSecond: 30 }),
          })
          .prefault({}),
      })
      .prefault({}),
    gateway: gateway.prefault({}),
    limits: limits.prefault({}),
    detect: detectSchema.prefault({}),
    catalog: catalogSchema.prefault({}),
    appStore: appStoreSchema.prefault({}),
    retention: retentionSchema.prefault({}),
    dsr: dsrSchema.prefault({}),
    crm: crmSchema.prefault({}),
    secrets: secretsSchema.prefault({}),
    policy: z
      .strictObject({
        /** Recorded runtime decisions (replayed by `policy simulate`) are deleted after this many days. */
        decisionRetentionDays: z.number().int().min(1).max(3650).default(30),
      })
      .prefault({}),
    compliance: z.strictObject({ residency: residencySchema.prefault({}) }).prefault({}),
    audit: z
      .strictObject({
        /** Milliseconds between scheduled checkpoints while the log grows (GET /audit/v1/checkpoint signs none). */
        checkpointInterval: z.number().int().min(100).max(3_600_000).default(1000),
        /** C2SP tlog-witnesses that cosign every checkpoint (`gatehouse witness serve` is one). */
        witnesses: z
          .array(
            z.strictObject({
              name: z.string().min(1),
              url: z.url(),
              /** The witness's cosignature/v1 verifier key (`gatehouse witness init` prints it). */
              vkey: z.string().min(1),
            }),
          )
          .max(32)
          .default([]),
        /** Cosignatures a checkpoint needs to be published and to verify; all witnesses when absent. */
        witnessQuorum: z.number().int().min(1).optional(),
      })
      .prefault({}),
    scopes: z.record(scopeName, fieldset),
    roles: z.record(z.string(), role),
    /** Outbound calls to configured addresses (webhooks, alert sinks, audit hooks). */
    net: z
      .strictObject({
        /**
         * Private, loopback or link-local addresses (CIDRs) hooks may reach anyway; empty: public only.
         * Checked when the connection is made, after DNS.
         */
        allowPrivateDestinations: z
          .array(z.string().refine(isCidr, { message: 'must be an IP address or CIDR such as 127.0.0.1/32' }))
          .default([]),
      })
      .prefault({}),
    control: z
      .strictObject({
        /**
         * How often each node reads the store's control revision (policy versions, playbooks, signing
         * keys): a change holds within this; on PostgreSQL LISTEN/NOTIFY brings it sooner.
         */
        pollMs: z.number().int().min(100).max(60_000).default(1000),
        /**
         * A node that has not confirmed its control state with the store for this long refuses requests
         * (503 CONTROL_STALE) rather than serve on policy or keys that may have changed.
         */
        maxStalenessMs: z.number().int().min(1000).max(3_600_000).default(30_000),
      })
      .prefault({}),
    demoUsers: z.record(z.string(), demoUser),
  })
  .superRefine((config, ctx) => {
    // Residency: alerts (who did what, which incident) leave Gatehouse only for the home region or a
    // region named with its transfer mechanism.
    const { home, forwardTo } = config.compliance.residency;
    for (const [name, sink] of Object.entries(config.detect.alerts)) {
      const region = sink?.region;
      if (region === undefined || region === home || forwardTo.some((f) => f.region === region)) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['detect', 'alerts', name, 'region'],
        message: `events may not be forwarded to ${region} (Gatehouse is in ${home}): name ${region} in compliance.residency.forwardTo with its transfer mechanism`,
      });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ObjectName = z.infer<typeof objectName>;
export type MaskName = z.infer<typeof maskName>;
export type RoleConfig = z.infer<typeof role>;
export type DemoUser = z.infer<typeof demoUser>;
export type GatewayConfig = z.infer<typeof gateway>;
export type LimitsOverrides = z.infer<typeof limits>;
