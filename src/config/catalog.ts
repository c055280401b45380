import { z } from 'zod';

const positive = z.number().int().positive();

/**
 * The `catalog` section: how long an approval lasts, the runtime constraints an approval gives an app
 * (derived from its plan), and where owners of unused apps are told about them.
 */
export const catalogSchema = z.strictObject({
  /** An approval lapses this many days after it was given; the app then needs a new review. */
  approvalDays: z.number().int().min(1).max(3650).default(180),
  /** Apps with no allowed request for this many days are listed as unused (`app list --unused`). */
  unusedDays: z.number().int().min(1).max(3650).default(30),
  /** Runtime constraints from the plan: budgets scale with `expected_users`, within floors and ceilings. */
  quota: z
    .strictObject({
      requestsPerUserPerDay: positive.default(1000),
      minDailyQuota: positive.default(1000),
      maxDailyQuota: positive.default(100_000),
      requestsPerUserPerMinute: positive.default(20),
      minPerMinute: positive.default(60),
      maxPerMinute: positive.default(600),
    })
    .refine((q) => q.minDailyQuota <= q.maxDailyQuota && q.minPerMinute <= q.maxPerMinute, {
      message: 'each minimum must be at most its maximum',
    })
    .prefault({}),
  /** Owners of unused apps are told through this webhook (JSON, signed with HMAC-SHA256). */
  webhook: z
    .strictObject({
      url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
      /** Key of the `x-gatehouse-signature` header; required, so a receiver can trust what it gets. */
      secret: z.string().min(16, { message: 'must be at least 16 characters' }),
      timeoutMs: positive.default(5000),
      retries: z.number().int().min(0).max(10).default(3),
      backoffMs: positive.default(500),
    })
    .optional(),
});

export type CatalogConfig = z.infer<typeof catalogSchema>;
