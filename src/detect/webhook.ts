/**
 * The webhook sink: the alert as JSON in a POST, signed with HMAC-SHA256 over `<timestamp>.<body>`
 * (header `x-gatehouse-signature: v1=<hex>`, timestamp in `x-gatehouse-timestamp`, seconds), retried
 * with exponential backoff on network errors, timeouts, 408, 429 and 5xx. Every attempt carries the
 * same `x-gatehouse-delivery` id, so a receiver can drop duplicates.
 */
import { createHmac, randomUUID } from 'node:crypto';
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

export const signatureHeader = 'x-gatehouse-signature';
export const timestampHeader = 'x-gatehouse-timestamp';
export const deliveryHeader = 'x-gatehouse-delivery';

/** `v1=` + hex HMAC-SHA256(secret, `${timestamp}.${body}`). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

export function webhookSink(options: WebhookOptions): AlertSink {
  const url = new URL(options.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError('the alert webhook must be an http(s) URL');
  }
  const now = options.now ?? (() => new Date());
  // The name appears in logs and timelines: the origin only, never a path or query that may hold a key.
  const name = `webhook ${url.origin}`;
  return {
    name,
    minSeverity: options.minSeverity,
    async send(alert: Alert) {
      const body = JSON.stringify(alert);
      const delivery = randomUUID();
      let problem = '';
      for (let attempt = 0; attempt <= options.retries; attempt++) {
        if (attempt > 0) {
          const backoff = options.backoffMs * 2 ** (attempt - 1);
          await new Promise((resolve) => setTimeout(resolve, backoff + Math.random() * backoff * 0.2));
        }
        const timestamp = String(Math.floor(now().getTime() / 1000));
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'user-agent': 'gatehouse-detect',
          [timestampHeader]: timestamp,
          [deliveryHeader]: delivery,
        };
        if (options.secret) headers[signatureHeader] = webhookSignature(options.secret, timestamp, body);
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers,
            body,
            redirect: 'error',
            signal: AbortSignal.timeout(options.timeoutMs),
          });
          await response.body?.cancel();
          if (response.ok) return;
          problem = `answered ${response.status}`;
          if (!retryable(response.status)) break;
        } catch (error) {
          problem = (error as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
        }
      }
      throw new Error(`${name} ${problem} after ${options.retries + 1} attempts or fewer`);
    },
  };
}
