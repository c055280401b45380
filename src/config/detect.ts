import { z } from 'zod';
import { regionName } from './residency.js';

/**
 * The `detect` section: detection rules (thresholds and a severity each), working hours, alert sinks.
 * What each rule's detection does (alert, throttle, revoke, suspend) is the playbook's business
 * (policies/playbooks.yaml), not this file's.
 */
export const severities = ['low', 'medium', 'high', 'critical'] as const;
const severity = z.enum(severities);
const positive = z.number().int().positive();
const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const clock = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/, { message: 'must be HH:MM' });
const timeZone = z.string().refine(
  (zone) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IANA time zone such as Europe/London' },
);

/** One person's working week: days and hours in their time zone (start ≥ end spans midnight). */
const workingHours = z.strictObject({
  timeZone: timeZone.optional(),
  days: z.array(z.enum(weekdays)).optional(),
  start: clock.optional(),
  end: clock.optional(),
});

/**
 * Every rule may be switched off and has a severity. `repeatSeconds` spaces a rule's repeated detections
 * of one key; detection writes at most one incident update per rule, actor and app a second anyway.
 */
const ruleBase = (defaultSeverity: z.infer<typeof severity>) => ({
  enabled: z.boolean().default(true),
  severity: severity.default(defaultSeverity),
  repeatSeconds: z.number().int().min(0).default(0),
});

const sink = {
  /** Alerts of this severity and above go to this sink. */
  minSeverity: severity.default('medium'),
  /** Where the sink is (residency): `compliance.residency.home` when absent. */
  region: regionName.optional(),
};

export const detectSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The playbook file; `<dataDir>/playbooks.yaml` when it exists, else the shipped policies/playbooks.yaml. */
  playbook: z.string().optional(),
  workingHours: z
    .strictObject({
      default: z
        .strictObject({
          timeZone: timeZone.default('UTC'),
          days: z.array(z.enum(weekdays)).default(['mon', 'tue', 'wed', 'thu', 'fri']),
          start: clock.default('08:00'),
          end: clock.default('18:00'),
        })
        .prefault({}),
      /** By user email; keys left out take the default's. The demo users live in London and New York. */
      users: z.record(z.string(), workingHours).default({
        'alice@example.com': { timeZone: 'Europe/London' },
        'bob@example.com': { timeZone: 'Europe/London' },
        'erin@example.com': { timeZone: 'America/New_York' },
      }),
    })
    .prefault({}),
  rules: z
    .strictObject({
      /**
       * Records read by one user (any apps), and through one app, within the window, against their own
       * baseline (an EWMA of records per active hour); and every refusal of the bulk-export guard.
       */
      mass_export: z
        .strictObject({
          ...ruleBase('high'),
          windowSeconds: positive.default(600),
          /** A user's threshold during warm-up, and its floor after: `factor` × baseline never goes below. */
          maxRecords: positive.default(2000),
          bulkExportGuard: z.boolean().default(true),
          factor: z.number().min(1.5).default(3),
          alpha: z.number().gt(0).max(1).default(0.2),
          /** Active hours learned before the baseline counts (warm-up). */
          minSamples: positive.default(8),
          /** Records of one user within the window that are an anomaly whatever their baseline. */
          ceiling: positive.default(50_000),
          /** An app's floor once learned; in its warm-up only `appCeiling` applies (an app is never judged by a flat count). */
          appMinRecords: positive.default(20_000),
          appCeiling: positive.default(200_000),
        })
        .prefault({}),
      /** Records one user reads outside their working hours, within the window, against their own off-hours baseline. */
      off_hours_bulk: z
        .strictObject({
          ...ruleBase('medium'),
          windowSeconds: positive.default(3600),
          // Above a rep's day of their own accounts (about 200 records): an evening's catch-up is not bulk.
          /** The threshold during warm-up, and the floor of `factor` × baseline after it. */
          minRecords: positive.default(300),
          factor: z.number().min(1.5).default(3),
          alpha: z.number().gt(0).max(1).default(0.2),
          /** Off-hours active hours learned before the baseline counts (warm-up). */
          minSamples: positive.default(5),
          /** Off-hours records within the window that are an anomaly whatever the baseline. */
          ceiling: positive.default(20_000),
        })
        .prefault({}),
      /**
       * Requests of an app, and of each user in an app, in an hour against their own EWMA for that hour
       * of the week (or of the day); until the baseline has `minSamples` (warm-up), only the ceilings.
       */
      rate_anomaly: z
        .strictObject({
          ...ruleBase('medium'),
          factor: z.number().min(1.5).default(5),
          minRequests: positive.default(300),
          alpha: z.number().gt(0).max(1).default(0.3),
          minSamples: positive.default(3),
          /** Requests of an app in an hour that are an anomaly whatever its baseline (and in warm-up). */
          ceiling: positive.default(20_000),
          /** Requests of one user in one app in an hour that are an anomaly whatever their baseline. */
          userCeiling: positive.default(3000),
        })
        .prefault({}),
      /** Denied requests of one principal (a user in an app, or an anonymous network) in a window. */
      denial_burst: z
        .strictObject({
          ...ruleBase('medium'),
          windowSeconds: positive.default(60),
          maxDenials: positive.default(20),
          /** Denials that are not probing: limits reached, the bulk-export guard (its own rule), expiry. */
          ignoreReasons: z
            .array(z.string())
            .default(['RATE_LIMITED', 'QUOTA_EXCEEDED', 'BULK_EXPORT_BLOCKED', 'TOKEN_EXPIRED']),
        })
        .prefault({}),
      /**
       * Refused grants at /oauth/token (forged or stolen ID tokens, guessed codes) from one network, or
       * for one client from many networks, within the window.
       */
      credential_stuffing: z
        .strictObject({
          ...ruleBase('high'),
          windowSeconds: positive.default(60),
          maxPerNetwork: positive.default(20),
          maxPerClient: positive.default(200),
          /** Refusals that are not guesses: the endpoint's own rate limit, an unavailable dependency. */
          ignoreReasons: z
            .array(z.string())
            .default(['RATE_LIMITED', 'DEPENDENCY_UNAVAILABLE', 'AUDIT_UNAVAILABLE']),
        })
        .prefault({}),
      /** A refresh token used twice: the broker revoked the sign-in; someone holds a stolen copy. */
      refresh_token_reuse: z.strictObject(ruleBase('high')).prefault({}),
      /** An app reads a sensitive field class of an object for the first time, after it has learned. */
      sensitive_first_access: z
        .strictObject({
          ...ruleBase('low'),
          learnSeconds: z.number().int().min(0).default(604_800),
          classes: z
            .record(z.string().regex(/^[a-z_]+$/), z.array(z.string().regex(/^[a-z]+\.[a-z_]+$/)).min(1))
            .default({
              pii: ['contact.email', 'contact.phone', 'contact.date_of_birth', 'contact.national_id'],
              financial: ['account.annual_revenue', 'opportunity.amount'],
            }),
        })
        .prefault({}),
      /** A user calls from a network (/24, /48) not seen for them before, after they have learned. */
      new_network: z
        .strictObject({
          ...ruleBase('low'),
          learnSeconds: z.number().int().min(0).default(604_800),
          maxNetworks: positive.default(32),
        })
        .prefault({}),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      webhook: z
        .strictObject({
          url: z.url(),
          /** HMAC-SHA256 key of the `x-gatehouse-signature` header; unsigned deliveries when absent. */
          secret: z.string().min(16).optional(),
          timeoutMs: positive.default(5000),
          retries: z.number().int().min(0).max(10).default(4),
          backoffMs: positive.default(500),
          ...sink,
        })
        .optional(),
      syslog: z
        .strictObject({
          host: z.string().default('127.0.0.1'),
          port: z.number().int().min(1).max(65535).default(514),
          protocol: z.enum(['udp', 'tcp']).default('udp'),
          /** RFC 5424 facility; 13 is "log audit". */
          facility: z.number().int().min(0).max(23).default(13),
          ...sink,
        })
        .optional(),
    })
    .prefault({}),
});

export type DetectConfig = z.infer<typeof detectSchema>;
export type Severity = z.infer<typeof severity>;
export type Weekday = (typeof weekdays)[number];
