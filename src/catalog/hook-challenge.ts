/**
 * An audit hook counts only once its receiver has proved it consents to Gatehouse's events: Gatehouse
 * POSTs a challenge (a random nonce HMAC-bound to the app and the hook, so one challenge cannot be
 * answered for another), and the receiver answers 200 with `{"challenge": "<the same value>"}`. A
 * metadata service or an internal API that happens to answer 200 never echoes it. The call goes through
 * the guarded egress, so a hook that resolves to a private or link-local address is never contacted.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Egress } from '../egress/index.js';
import { DestinationRefused } from '../errors/index.js';
import { deliveryHeader } from './notify.js';

export const hookChallengeType = 'gatehouse.audit_hook.challenge';

export interface HookChallengeResult {
  readonly verified: boolean;
  /** Why not, never the URL's path or query: `answered 404`, `did not echo the challenge`, `was refused: …`. */
  readonly problem?: string;
}

// Per process: a challenge is answered within the one request that sends it.
const challengeKey = randomBytes(32);

/** `<nonce>.<HMAC-SHA256(key, app \n hook \n nonce)>`, base64url. */
export function hookChallenge(appId: string, hook: string, nonce = randomBytes(18).toString('base64url')) {
  const mac = createHmac('sha256', challengeKey).update(`${appId}\n${hook}\n${nonce}`).digest('base64url');
  return `${nonce}.${mac}`;
}

function echoed(body: string, challenge: string): boolean {
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    return false;
  }
  const value = (answer as { challenge?: unknown } | null)?.challenge;
  if (typeof value !== 'string' || value.length !== challenge.length) return false;
  return timingSafeEqual(Buffer.from(value), Buffer.from(challenge));
}

/** Sends the challenge to `hook`; never throws: a refusal or silence is an unverified hook. */
export async function challengeAuditHook(
  egress: Egress,
  appId: string,
  hook: string,
): Promise<HookChallengeResult> {
  const challenge = hookChallenge(appId, hook);
  try {
    const response = await egress.send(hook, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'gatehouse-catalog',
        [deliveryHeader]: randomUUID(),
      },
      body: JSON.stringify({ type: hookChallengeType, app_id: appId, challenge }),
      timeoutMs: 5000,
      maxBytes: 4096,
    });
    if (response.status !== 200) return { verified: false, problem: `answered ${response.status}` };
    if (!echoed(response.body, challenge)) return { verified: false, problem: 'did not echo the challenge' };
    return { verified: true };
  } catch (error) {
    if (error instanceof DestinationRefused)
      return { verified: false, problem: `was refused: ${error.message}` };
    return { verified: false, problem: 'is unreachable' };
  }
}
