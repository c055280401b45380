/**
 * The signed DSR webhook to an app that keeps copies of CRM data itself. One function, so that the
 * guarded outbound dispatcher (SSRF rules, issue 14) can replace plain fetch here alone.
 *
 * POST <webhook> with the JSON body, headers `x-gatehouse-timestamp: <unix seconds>` and
 * `x-gatehouse-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` (the catalog's scheme).
 * The app acknowledges by answering 2xx with `{ "dsr_id": "<id>", "acknowledged": true }`.
 */
import { createHmac } from 'node:crypto';

export interface DsrWebhookResult {
  acknowledged: boolean;
  /** Why not, in a few words (status code, timeout); never the answer's body. */
  detail: string;
}

export async function postDsrWebhook(
  url: string,
  payload: { dsr_id: string } & Record<string, unknown>,
  options: { secret: string; timeoutMs: number; now?: () => Date },
): Promise<DsrWebhookResult> {
  const body = JSON.stringify(payload);
  const timestamp = String(Math.floor((options.now?.() ?? new Date()).getTime() / 1000));
  const signature = `v1=${createHmac('sha256', options.secret).update(`${timestamp}.${body}`).digest('hex')}`;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gatehouse-timestamp': timestamp,
        'x-gatehouse-signature': signature,
      },
      body,
      // A redirect could lead the signed request anywhere: it counts as no acknowledgement.
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel();
      return { acknowledged: false, detail: `answered ${response.status}` };
    }
    // Attacker-controlled: the app's answer; only these two members are read.
    const answer = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    return answer?.dsr_id === payload.dsr_id && answer.acknowledged === true
      ? { acknowledged: true, detail: 'acknowledged' }
      : { acknowledged: false, detail: 'answered without an acknowledgement' };
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    return { acknowledged: false, detail: timedOut ? 'timed out' : 'unreachable' };
  }
}
