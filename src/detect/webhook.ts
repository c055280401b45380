/**
 * The webhook sink: the alert as JSON in a POST, through the catalog's signed delivery (HMAC-SHA256 over
 * `<timestamp>.<body>` in `x-gatehouse-signature`, retries with backoff, one `x-gatehouse-delivery` id
 * per alert), so one receiver verifies both the catalog's notices and detection's alerts.
 */
import { deliver } from '../catalog/index.js';
import type { Egress } from '../egress/index.js';
import type { Severity } from './types.js';
import type { Alert, AlertSink } from './alerts.js';

export interface WebhookOptions {
  readonly url: string;
  readonly secret?: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly minSeverity: Severity;
  readonly now?: () => Date;
}

/** Posts alerts through `egress`, which refuses private and link-local destinations at connect time. */
export function webhookSink(options: WebhookOptions, egress: Egress): AlertSink {
  const url = new URL(options.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError('the alert webhook must be an http(s) URL');
  }
  // The name appears in logs and timelines: the origin only, never a path or query that may hold a key.
  const name = `webhook ${url.origin}`;
  return {
    name,
    minSeverity: options.minSeverity,
    async send(alert: Alert) {
      const sent = await deliver({ ...options, url }, alert, {
        egress,
        now: options.now,
        userAgent: 'gatehouse-detect',
      });
      if (!sent.delivered)
        throw new Error(`${name} ${sent.problem ?? 'failed'} after ${sent.attempts} attempts`);
    },
  };
}
