/**
 * Telling owners about their unused apps: one JSON POST per app to the configured webhook, signed with
 * HMAC-SHA256 over `<timestamp>.<body>` (`x-gatehouse-signature: v1=<hex>`, the timestamp in seconds in
 * `x-gatehouse-timestamp`), retried with exponential backoff on network errors, timeouts, 408, 429 and
 * 5xx. Every attempt carries the same `x-gatehouse-delivery` id, so a receiver can drop duplicates.
 * Detection's alert webhook posts through the same function, so one receiver verifies both.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AuditEvent } from '../audit/index.js';
import type { CatalogConfig } from '../config/index.js';
import type { Egress } from '../egress/index.js';
import { DestinationRefused } from '../errors/index.js';
import type { Db } from '../store/index.js';
import type { App } from './apps.js';
import { catalogDb } from './tables.js';

export type WebhookSettings = NonNullable<CatalogConfig['webhook']>;

/** Where and how to post: the catalog's settings, or detection's alert sink (whose secret is optional). */
export interface WebhookTarget {
  readonly url: string | URL;
  readonly secret?: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
}

export const signatureHeader = 'x-gatehouse-signature';
export const timestampHeader = 'x-gatehouse-timestamp';
export const deliveryHeader = 'x-gatehouse-delivery';

/** `v1=` + hex HMAC-SHA256(secret, `${timestamp}.${body}`). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface Delivery {
  readonly delivered: boolean;
  readonly attempts: number;
  /** Why the last attempt failed: a status or `timed out` / `unreachable`, never the URL. */
  readonly problem?: string;
}

const isTimeout = (error: unknown) =>
  ['TimeoutError', 'HeadersTimeoutError', 'BodyTimeoutError', 'ConnectTimeoutError'].includes(
    (error as Error).name,
  );
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * POSTs `payload` as JSON through the guarded egress, signed when the target has a secret; answers
 * whether it was delivered and after how many attempts. Never throws: a failure is an answer. A refused
 * destination (private address, redirect) is not retried: it will not change its mind.
 */
export async function deliver(
  webhook: WebhookTarget,
  payload: unknown,
  options: { egress: Egress; now?: () => Date; userAgent?: string },
): Promise<Delivery> {
  const now = options.now ?? (() => new Date());
  const body = JSON.stringify(payload);
  const delivery = randomUUID();
  let problem = '';
  let attempts = 0;
  for (let attempt = 0; attempt <= webhook.retries; attempt++) {
    if (attempt > 0) {
      const backoff = webhook.backoffMs * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, backoff + Math.random() * backoff * 0.2));
    }
    attempts += 1;
    const timestamp = String(Math.floor(now().getTime() / 1000));
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': options.userAgent ?? 'gatehouse-catalog',
        [timestampHeader]: timestamp,
        [deliveryHeader]: delivery,
      };
      if (webhook.secret) headers[signatureHeader] = webhookSignature(webhook.secret, timestamp, body);
      const response = await options.egress.send(webhook.url, {
        method: 'POST',
        headers,
        body,
        timeoutMs: webhook.timeoutMs,
      });
      if (response.status >= 200 && response.status < 300) return { delivered: true, attempts };
      problem = `answered ${response.status}`;
      if (!retryable(response.status)) break;
    } catch (error) {
      if (error instanceof DestinationRefused) {
        problem = `was refused: ${error.message}`;
        break;
      }
      problem = isTimeout(error) ? 'timed out' : 'unreachable';
    }
  }
  return { delivered: false, attempts, problem };
}

export interface UnusedNotice {
  readonly type: 'gatehouse.app.unused';
  readonly app_id: string;
  readonly name: string;
  readonly owner: string;
  readonly state: string;
  /** The last allowed CRM request, or null when the app never made one. */
  readonly last_used_at: string | null;
  readonly idle_since: string;
  readonly threshold_days: number;
  readonly message: string;
  readonly sent_at: string;
}

/** When the app's idle stretch began: its last use, else its approval, else its registration. */
export function idleSince(app: App): string {
  return app.lastUsedAt ?? app.approvedAt ?? app.createdAt;
}

/** Whether the owner was told about this idle stretch already (one notice per stretch, not per run). */
export function alreadyNotified(app: App): boolean {
  return app.unusedNotifiedAt !== undefined && app.unusedNotifiedAt >= idleSince(app);
}

export function unusedNotice(app: App, thresholdDays: number, at: Date): UnusedNotice {
  return {
    type: 'gatehouse.app.unused',
    app_id: app.id,
    name: app.name,
    owner: app.owner,
    state: app.status,
    last_used_at: app.lastUsedAt ?? null,
    idle_since: idleSince(app),
    threshold_days: thresholdDays,
    message: `${app.id} has made no CRM request for ${thresholdDays} days or more: retire it (gatehouse app retire ${app.id}) or tell the platform team why it should stay`,
    sent_at: at.toISOString(),
  };
}

export interface NoticeResult {
  readonly app_id: string;
  readonly owner: string;
  readonly outcome: 'notified' | 'already_notified' | 'failed';
  readonly attempts: number;
  readonly problem?: string;
}

/**
 * Notifies the owner of each app once per idle stretch; records each notice in the audit trail and on
 * the app. A failed delivery is reported, recorded as an error and tried again on the next run.
 */
export async function notifyUnused(
  deps: {
    db: Db;
    audit: { append(event: AuditEvent): Promise<unknown> };
    webhook: WebhookSettings;
    egress: Egress;
    actor: string;
    now?: () => Date;
  },
  apps: readonly App[],
  thresholdDays: number,
): Promise<NoticeResult[]> {
  const now = deps.now ?? (() => new Date());
  const results: NoticeResult[] = [];
  for (const app of apps) {
    if (alreadyNotified(app)) {
      results.push({ app_id: app.id, owner: app.owner, outcome: 'already_notified', attempts: 0 });
      continue;
    }
    const at = now();
    const sent = await deliver(deps.webhook, unusedNotice(app, thresholdDays, at), {
      egress: deps.egress,
      now,
    });
    await deps.audit.append({
      timestamp: at.toISOString(),
      actor_id: deps.actor,
      actor_role: 'system',
      app_id: app.id,
      action: 'app.notify_unused',
      resource_type: 'app',
      resource_id: app.id,
      scope: '',
      request_id: `notify-${randomBytes(9).toString('base64url')}`,
      trace_id: '',
      outcome: sent.delivered ? 'allow' : 'error',
      reason: sent.delivered
        ? `owner ${app.owner} notified: no CRM request since ${idleSince(app)} (threshold ${thresholdDays} days)`
        : `owner ${app.owner} not notified: the webhook ${sent.problem ?? 'failed'}`,
    });
    if (sent.delivered) {
      await catalogDb(deps.db)
        .updateTable('apps')
        .set({ unused_notified_at: at.toISOString() })
        .where('id', '=', app.id)
        .execute();
    }
    results.push({
      app_id: app.id,
      owner: app.owner,
      outcome: sent.delivered ? 'notified' : 'failed',
      attempts: sent.attempts,
      ...(sent.problem && !sent.delivered ? { problem: sent.problem } : {}),
    });
  }
  return results;
}
