import { z } from 'zod';
import { defaultConsentPurposes, defaultScopes } from '../config/index.js';
import { ManifestInvalid } from './errors.js';

/**
 * The app manifest (CONTRACT.md "App manifest"): validated strictly, then enriched with what the
 * admission policies need — the data classes of every field the scopes open, the objects read and
 * written, the insecure redirect URIs, the largest daily share of a sensitive table and a risk score.
 * The policies decide; this file only computes facts.
 */

export const dataClasses = ['public', 'internal', 'pii', 'financial', 'health', 'secret'] as const;
export type DataClass = (typeof dataClasses)[number];
export const crmObjects = ['account', 'contact', 'opportunity', 'note'] as const;
export type CrmObjectName = (typeof crmObjects)[number];

/** GDPR Art. 6(1)(a)–(f). */
export const lawfulBases = [
  'consent',
  'contract',
  'legal_obligation',
  'vital_interests',
  'public_task',
  'legitimate_interests',
] as const;

/** Categories of personal data a record of processing names. */
export const dataCategories = [
  'identification',
  'contact_details',
  'professional',
  'financial',
  'communications',
  'national_identifiers',
  'special_category',
] as const;

const regionName = z.string().regex(/^[A-Z][A-Z0-9_]{0,15}$/, {
  message: 'must be a region name such as EU, US or APAC',
});

const sensitiveClasses: ReadonlySet<string> = new Set(['pii', 'financial', 'health', 'secret']);

/**
 * Classes of the CRM fields that are not `internal` (the embedded CRM's field metadata). The server
 * passes the classify module's answer instead when it has one.
 */
export const defaultFieldClasses: Readonly<Record<string, DataClass>> = {
  'account.industry': 'public',
  'account.annual_revenue': 'financial',
  'contact.email': 'pii',
  'contact.phone': 'pii',
  'contact.date_of_birth': 'pii',
  'contact.national_id': 'pii',
  'opportunity.amount': 'financial',
};

export interface FieldsetLike {
  readonly object: string;
  readonly fields: readonly string[];
}

/** What enrichment needs to know about the installation; every member has a default. */
export interface ManifestContext {
  /** Scope → fieldset (config `scopes`); the default fieldsets when absent. */
  readonly fieldsets?: Readonly<Record<string, FieldsetLike>>;
  /** `object.field` → data class; fields not named are `internal`. */
  readonly fieldClasses?: Readonly<Record<string, string>>;
  /** Records per CRM table. A table of unknown size counts as size 0, so any expected read of it is over 1%. */
  readonly tableSizes?: Readonly<Partial<Record<string, number>>>;
  /** The consent purpose vocabulary (config `gateway.consent.purposes`); the default one when absent. */
  readonly consentPurposes?: readonly string[];
}

const scopePattern = /^(read|write):(account|contact|opportunity|note)\.[a-z_]+$/;

const manifestSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9-]{1,62}$/, { message: 'must be 2–63 lower-case letters, digits or dashes' }),
  owner: z.email({ message: 'must be an email address' }),
  purpose: z.string().trim().min(3, { message: 'must say what the app is for' }).max(500),
  description: z.string().max(2000).optional(),
  scopes: z
    .array(z.string().regex(scopePattern, { message: 'must look like read:contact.basic (no wildcards)' }))
    .min(1, { message: 'must name at least one scope' }),
  data_classes: z.array(z.enum(dataClasses)).min(1, { message: 'must name at least one data class' }),
  retention_days: z.number().int().min(0).max(3650),
  expected_users: z.number().int().min(1).max(1_000_000),
  telemetry: z.boolean(),
  audit_hook: z.url({ protocol: /^https$/, message: 'must be an https URL' }).optional(),
  /** Whether users sign in through the company SSO; true unless the app declares otherwise. */
  sso: z.boolean().default(true),
  redirect_uris: z.array(z.string()).default([]),
  /**
   * The app's own client id at the company IdP: the ID tokens its users present for token exchange
   * must be issued to it. The app's Gatehouse client id when absent.
   */
  idp_client_id: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, { message: 'must be 1-128 letters, digits or . _ : -' })
    .optional(),
  /**
   * The public keys of a confidential app (a JWKS): token exchange then requires a `private_key_jwt`
   * client assertion (RFC 7523) signed by one of them. Public keys only; absent for a public app.
   */
  client_jwks: z
    .object({
      keys: z
        .array(
          z
            .looseObject({ kty: z.enum(['EC', 'OKP', 'RSA']) })
            .refine(
              (key) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => Object.hasOwn(key, member)),
              { message: 'must hold public keys only (no private members)' },
            ),
        )
        .min(1)
        .max(5),
    })
    .optional(),
  /** Expected records read per day, by CRM object. */
  expected_reads: z.partialRecord(z.enum(crmObjects), z.number().int().min(0)).default({}),
  /**
   * The purpose the app processes contacts for: a contact is processed only if it consented to it. One
   * code of the installation's vocabulary (checked in parseManifest); none: the app sees no contact.
   */
  consent_purpose: z.string().max(64).optional(),
  /** Tokens of this app must be DPoP-bound (RFC 9449): the broker issues none without a proof. */
  require_dpop: z.boolean().default(false),
  /**
   * Where the app runs and keeps what it stores, and the regions whose records it may receive (each
   * a transfer with a lawful mechanism, e.g. standard contractual clauses). The installation's home
   * region, no transfers, when absent.
   */
  residency: z
    .strictObject({
      region: regionName,
      transfers: z.array(regionName).max(16).default([]),
      /** The legal mechanism of the transfers (GDPR Art. 46), e.g. "SCC 2021/914 module 2". */
      transfer_mechanism: z.string().trim().min(3).max(200).optional(),
    })
    .refine((r) => r.transfers.length === 0 || r.transfer_mechanism !== undefined, {
      message: 'transfers need a transfer_mechanism (GDPR Art. 46, e.g. standard contractual clauses)',
      path: ['transfer_mechanism'],
    })
    .optional(),
  /** GDPR Art. 6(1): the lawful basis of the processing. */
  lawful_basis: z.enum(lawfulBases).optional(),
  /** The purposes of the processing in plain language (GDPR Art. 30(1)(b)). */
  purposes: z.array(z.string().trim().min(3).max(200)).max(20).optional(),
  /** The categories of personal data processed (GDPR Art. 30(1)(c)). */
  data_categories: z.array(z.enum(dataCategories)).max(dataCategories.length).optional(),
  /**
   * Whether and where the app keeps copies of CRM data: `none`; `gatehouse` (the governed app store,
   * scope `app:store`); `app` (its own storage, reached by signed DSR webhooks at `dsr_webhook`).
   */
  keeps_copies: z
    .strictObject({
      where: z.enum(['none', 'gatehouse', 'app']),
      dsr_webhook: z
        .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
        .refine(
          (url) => url.startsWith('https:') || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(url),
          {
            message: 'must be https (plain http only on loopback)',
          },
        )
        .optional(),
    })
    .refine((copies) => (copies.where === 'app') === (copies.dsr_webhook !== undefined), {
      message: 'an app keeping copies itself must name its dsr_webhook (and only then)',
    })
    .optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

export interface Enrichment {
  /** Declared classes ∪ classes of every field the scopes open, most sensitive last. */
  readonly data_classes: string[];
  /** 0–100; see riskScore. */
  readonly risk_score: number;
  readonly fields: Record<string, string[]>;
  readonly read_objects: string[];
  readonly write_objects: string[];
  readonly insecure_redirect_uris: string[];
  /** Expected daily reads of the sensitive table with the largest share, and that table's size. */
  readonly sensitive_reads: number;
  readonly sensitive_table_size: number;
  /** The plan's regulation mapping as declared: shown at admission, the basis of the app's runbook. */
  readonly processing: Processing;
}

/** What the plan says about its processing (GDPR Art. 30): undeclared parts are named as such. */
export interface Processing {
  readonly lawful_basis: string;
  readonly purposes: readonly string[];
  readonly data_categories: readonly string[];
  readonly region: string | undefined;
  readonly stores: string;
  readonly transfers: readonly string[];
}

function processingOf(manifest: Manifest): Processing {
  return {
    lawful_basis: manifest.lawful_basis ?? 'undeclared',
    purposes: manifest.purposes ?? [manifest.purpose],
    data_categories: manifest.data_categories ?? [],
    region: manifest.residency?.region,
    stores: manifest.keeps_copies?.where ?? 'none',
    transfers: manifest.residency?.transfers ?? [],
  };
}

/** Validates a manifest; throws ManifestInvalid listing every problem as `field: what is wrong`. */
export function parseManifest(input: unknown, context: ManifestContext = {}): Manifest {
  const parsed = manifestSchema.safeParse(input);
  const errors: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map((p, i) =>
        typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`,
      );
      const where = path.join('') || 'manifest';
      const message =
        issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
      errors.push(`${where}: ${message}`);
    }
    throw new ManifestInvalid(errors);
  }
  const manifest = parsed.data;
  const fieldsets: Readonly<Record<string, FieldsetLike>> = context.fieldsets ?? defaultScopes;
  const seen = new Set<string>();
  manifest.scopes.forEach((scope, i) => {
    if (!Object.hasOwn(fieldsets, scope)) errors.push(`scopes[${i}]: unknown scope ${scope}`);
    if (seen.has(scope)) errors.push(`scopes[${i}]: ${scope} is listed twice`);
    seen.add(scope);
  });
  const purposes = context.consentPurposes ?? defaultConsentPurposes;
  const purpose = manifest.consent_purpose;
  if (purpose !== undefined && !purposes.includes(purpose)) {
    errors.push(
      `consent_purpose: ${JSON.stringify(purpose)} is not a consent purpose here; use one of ${purposes.join(', ')}`,
    );
  }
  manifest.redirect_uris.forEach((uri, i) => {
    if (!URL.canParse(uri)) errors.push(`redirect_uris[${i}]: must be an absolute URL`);
    else if (new URL(uri).hash) errors.push(`redirect_uris[${i}]: must not have a fragment`);
  });
  const hookProblem = manifest.audit_hook === undefined ? undefined : auditHookProblem(manifest.audit_hook);
  if (hookProblem) errors.push(`audit_hook: ${hookProblem}`);
  if (errors.length > 0) throw new ManifestInvalid(errors);
  return manifest;
}

/**
 * Why an audit hook URL names no public host, or undefined. An IP literal, loopback, `.local` or
 * `.internal` name, or a single label would let an app point Gatehouse at the metadata service or the
 * internal network (169.254.169.254, 10.x); names are checked again when they resolve.
 */
export function auditHookProblem(url: string): string | undefined {
  const host = new URL(url).hostname.toLowerCase().replace(/\.$/, '');
  const refuse =
    'must name a public host by DNS name, not an IP address, loopback, private or link-local one';
  // WHATWG URL parsing turns every IPv4 spelling (decimal, hex, octal) into dotted digits, and IPv6 into [..].
  if (host.startsWith('[') || /^[0-9.]+$/.test(host)) return refuse;
  if (!host.includes('.') || /(^|\.)(localhost|local|internal|localdomain|home\.arpa)$/.test(host))
    return refuse;
  return undefined;
}

export function enrichManifest(manifest: Manifest, context: ManifestContext = {}): Enrichment {
  const fieldsets: Readonly<Record<string, FieldsetLike>> = context.fieldsets ?? defaultScopes;
  const fieldClasses = context.fieldClasses ?? defaultFieldClasses;
  const classOf = (object: string, field: string) => fieldClasses[`${object}.${field}`] ?? 'internal';

  const classes = new Set<string>(manifest.data_classes);
  const fields: Record<string, Set<string>> = {};
  const readObjects = new Set<string>();
  const writeObjects = new Set<string>();
  for (const scope of manifest.scopes) {
    const set = fieldsets[scope];
    if (!set) continue;
    (scope.startsWith('write:') ? writeObjects : readObjects).add(set.object);
    const bucket = (fields[set.object] ??= new Set());
    for (const field of set.fields) {
      bucket.add(field);
      classes.add(classOf(set.object, field));
    }
  }

  // A table is sensitive when any of its known fields is.
  const sensitiveObjects = new Set<string>();
  for (const [key, cls] of Object.entries(fieldClasses)) {
    if (sensitiveClasses.has(cls)) sensitiveObjects.add(key.split('.')[0] as string);
  }
  for (const set of Object.values(fieldsets)) {
    if (set.fields.some((f) => sensitiveClasses.has(classOf(set.object, f))))
      sensitiveObjects.add(set.object);
  }
  let sensitiveReads = 0;
  let sensitiveTableSize = 0;
  let worst = -1;
  for (const [object, reads] of Object.entries(manifest.expected_reads)) {
    if (!reads || !sensitiveObjects.has(object)) continue;
    const size = context.tableSizes?.[object] ?? 0;
    const share = size > 0 ? reads / size : Number.POSITIVE_INFINITY;
    if (share > worst) {
      worst = share;
      sensitiveReads = reads;
      sensitiveTableSize = size;
    }
  }

  const insecure = manifest.redirect_uris.filter((uri) => !secureRedirect(uri));
  const ordered = [...classes].sort((a, b) => rank(a) - rank(b));
  const partial = {
    data_classes: ordered,
    fields: Object.fromEntries(Object.entries(fields).map(([o, s]) => [o, [...s].sort()])),
    read_objects: [...readObjects].sort(),
    write_objects: [...writeObjects].sort(),
    insecure_redirect_uris: insecure,
    sensitive_reads: sensitiveReads,
    sensitive_table_size: sensitiveTableSize,
    processing: processingOf(manifest),
  };
  return { ...partial, risk_score: riskScore(manifest, partial) };
}

function rank(cls: string): number {
  const i = (dataClasses as readonly string[]).indexOf(cls);
  return i < 0 ? dataClasses.length : i;
}

/** https anywhere, or http on a loopback host (native and local development clients, RFC 8252 §7.3). */
export function secureRedirect(uri: string): boolean {
  if (!URL.canParse(uri)) return false;
  const url = new URL(uri);
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  return url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
}

const classWeight: Readonly<Record<string, number>> = {
  public: 0,
  internal: 5,
  pii: 25,
  financial: 20,
  health: 35,
  secret: 50,
};

/**
 * A 0–100 indication of how much could go wrong, shown to reviewers and usable by policies:
 * the sum of the class weights (internal 5, financial 20, pii 25, health 35, secret 50), 10 per
 * sensitive object written, 5 for more than 20 users and 15 for more than 100, 5 for retention over
 * 90 days and 10 over 365, 15 each for no telemetry, no SSO, insecure redirects and a bulk-read share.
 */
export function riskScore(manifest: Manifest, facts: Omit<Enrichment, 'risk_score'>): number {
  let score = 0;
  for (const cls of facts.data_classes) score += classWeight[cls] ?? 0;
  score += 10 * facts.write_objects.filter((o) => o !== 'note').length;
  if (manifest.expected_users > 100) score += 15;
  else if (manifest.expected_users > 20) score += 5;
  if (manifest.retention_days > 365) score += 10;
  else if (manifest.retention_days > 90) score += 5;
  if (!manifest.telemetry && !manifest.audit_hook) score += 15;
  if (!manifest.sso) score += 15;
  if (facts.insecure_redirect_uris.length > 0) score += 15;
  if (facts.sensitive_reads * 100 > facts.sensitive_table_size) score += 15;
  return Math.min(100, score);
}
