import { z } from 'zod';

const positive = z.number().int().positive();
const days = z.number().int().min(0).max(36_500);

/**
 * The `appStore` section: limits of the governed app data store (`/apps/v1/store`), per app and user.
 */
export const appStoreSchema = z.strictObject({
  /** The largest document (its JSON `data`, in bytes) one PUT may store. */
  maxDocumentBytes: positive.max(1_048_576).default(16_384),
  /** Documents one user of one app may keep, all collections together. */
  maxDocumentsPerUser: positive.max(1_000_000).default(1000),
});

/**
 * The `retention` section: how long data of each class may be kept, in days, in the app store and as
 * audit event bodies (leaf hashes are kept forever). A class not named is kept until deleted.
 */
export const retentionSchema = z.strictObject({
  days: z
    .partialRecord(z.enum(['public', 'internal', 'pii', 'financial', 'health', 'secret']), days)
    .default({ pii: 30, financial: 365, health: 30, secret: 7 }),
  /** How often the purge job runs while the server is up; 0 runs it only on `compliance purge --now`. */
  purgeIntervalMs: z.number().int().min(0).default(3_600_000),
});

/**
 * The `dsr` section: data-subject requests. Legal due dates per regime, and the webhook that apps keeping
 * copies of CRM data elsewhere must acknowledge.
 */
export const dsrSchema = z.strictObject({
  /** Days from receipt to the legal due date (GDPR Art. 12(3): one month; CCPA: 45 days). */
  dueDays: z.strictObject({ gdpr: days.default(30), ccpa: days.default(45) }).prefault({}),
  /** An app's webhook not acknowledged within this many days is escalated. */
  acknowledgeDays: days.default(7),
  /** Key of the `x-gatehouse-signature` HMAC-SHA256 on DSR webhooks; without it none is sent (escalated). */
  webhookSecret: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  webhookTimeoutMs: positive.default(5000),
});

export type AppStoreConfig = z.infer<typeof appStoreSchema>;
export type RetentionConfig = z.infer<typeof retentionSchema>;
export type DsrConfig = z.infer<typeof dsrSchema>;
