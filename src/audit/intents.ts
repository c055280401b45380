/**
 * Writes whose intent is in the log without an outcome. A gateway write appends `<action>.intent`
 * before it changes the CRM and `<action>` (allowed, denied or failed) under the same request id after;
 * an intent left alone means the change may have happened while its outcome could not be recorded
 * (a crash, a full disk, the database gone), and an operator must look at that record.
 */

const intentSuffix = '.intent';

export interface UnfinishedWrite {
  /** The intent's index in the log. */
  readonly index: number;
  readonly request_id: string;
  readonly action: string;
  readonly app_id: string;
  readonly actor_id: string;
  readonly resource_type: string;
  readonly resource_id: string;
}

/** Fed every event in log order; answers the intents no later event of the same request finished. */
export class IntentTracker {
  readonly #open = new Map<string, UnfinishedWrite>();

  see(index: number, canonical: string): void {
    // Parsing every event would double the cost of a verify; only intents and, while one is open,
    // events that may be its outcome are read.
    if (this.#open.size === 0 && !canonical.includes(`${intentSuffix}"`)) return;
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(canonical) as Record<string, unknown>;
    } catch {
      return; // A malformed event is the log verifier's finding, not this one's.
    }
    const text = (key: string) => (typeof event[key] === 'string' ? event[key] : '');
    const action = text('action');
    const requestId = text('request_id');
    if (action.endsWith(intentSuffix)) {
      this.#open.set(requestId, {
        index,
        request_id: requestId,
        action: action.slice(0, -intentSuffix.length),
        app_id: text('app_id'),
        actor_id: text('actor_id'),
        resource_type: text('resource_type'),
        resource_id: text('resource_id'),
      });
      return;
    }
    if (this.#open.get(requestId)?.action === action) this.#open.delete(requestId);
  }

  unfinished(): UnfinishedWrite[] {
    return [...this.#open.values()];
  }
}
