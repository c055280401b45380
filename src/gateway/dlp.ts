import type { Config } from '../config/index.js';
import type { CrmObject, CrmRecord } from '../crm/index.js';
import { applyDlp, type DetectorKind, type DlpAction, type DlpRule } from '../dlp/index.js';
import { DlpRefused } from '../errors/index.js';
import type { Principal } from '../policy/index.js';
import type { Trail } from './pipeline.js';
import { mayReadUnmasked } from './scopes.js';

/**
 * DLP at the gateway: free-text fields (config gateway.freeTextFields) are scanned on the way in, where
 * a payment card, national id or secret is refused or redacted as configured, and on the way out, where
 * whatever the reader should not carry is redacted. Only kinds and counts are ever recorded, never text.
 */

/** What DLP did to one request's records: counts by kind, for the audit reason. */
export class DlpTally {
  readonly #kinds = new Map<DetectorKind, number>();

  add(kinds: readonly DetectorKind[]): void {
    for (const kind of kinds) this.#kinds.set(kind, (this.#kinds.get(kind) ?? 0) + 1);
  }

  get count(): number {
    let total = 0;
    for (const n of this.#kinds.values()) total += n;
    return total;
  }

  /** `dlp redacted 3 (email, phone)`, or '' when nothing was redacted. */
  describe(): string {
    if (this.count === 0) return '';
    return `dlp redacted ${this.count} (${[...this.#kinds.keys()].sort().join(', ')})`;
  }
}

/** The free-text fields of `object`. */
export function freeTextFields(config: Config, object: CrmObject): string[] {
  const prefix = `${object}.`;
  return config.gateway.freeTextFields
    .filter((ref) => ref.startsWith(prefix))
    .map((ref) => ref.slice(prefix.length));
}

/** The incoming rules: each kind with the action configured for it. */
function incomingRules(config: Config): DlpRule[] {
  const byAction = new Map<DlpAction, DetectorKind[]>();
  for (const [kind, action] of Object.entries(config.gateway.dlp.incoming) as [DetectorKind, DlpAction][]) {
    byAction.set(action, [...(byAction.get(action) ?? []), kind]);
  }
  return [...byAction].map(([action, kinds]) => ({ action, kinds }));
}

/**
 * screen: incoming free text, before anything is stored. A refused kind is a 422 naming the field and
 * the kinds; redacted kinds are replaced by `[redacted:kind]` in what is stored.
 */
export function screenIncoming(
  config: Config,
  object: CrmObject,
  values: CrmRecord,
  tally: DlpTally,
  trail: Pick<Trail, 'detail'>,
): CrmRecord {
  const rules = incomingRules(config);
  const out: CrmRecord = { ...values };
  for (const field of freeTextFields(config, object)) {
    const text = values[field];
    if (typeof text !== 'string') continue;
    const result = applyDlp(text, rules);
    const kinds = [...new Set(result.findings.map((f) => f.kind))].sort();
    if (result.action === 'refuse') {
      trail.detail = `${field} holds ${kinds.join(', ')}`;
      throw new DlpRefused(field, kinds);
    }
    if (result.action === 'redact') {
      out[field] = result.text;
      tally.add(result.findings.map((f) => f.kind));
    }
  }
  return out;
}

/**
 * The outgoing rule for one reader: the kinds redacted for everyone, and each kind the reader could not
 * read unmasked from the record that holds it (a rep whose contact phones are masked gets no phone
 * number out of a note either).
 */
export function outgoingRules(config: Config, principal: Principal): DlpRule[] {
  // Built once per configuration and principal (one per verified token), not once per request.
  let byPrincipal = rulesByConfig.get(config);
  if (!byPrincipal) rulesByConfig.set(config, (byPrincipal = new WeakMap()));
  let rules = byPrincipal.get(principal);
  if (!rules) byPrincipal.set(principal, (rules = buildOutgoingRules(config, principal)));
  return rules;
}

const rulesByConfig = new WeakMap<Config, WeakMap<Principal, DlpRule[]>>();

function buildOutgoingRules(config: Config, principal: Principal): DlpRule[] {
  const { redact, unlessReadable } = config.gateway.dlp.outgoing;
  const kinds = new Set<DetectorKind>(redact);
  for (const [kind, ref] of Object.entries(unlessReadable) as [DetectorKind, string][]) {
    const [object = '', field = ''] = ref.split('.');
    if (!mayReadUnmasked(config, principal, object, field)) kinds.add(kind);
  }
  return [{ kinds: [...kinds], action: 'redact' }];
}

/** protect (DLP part): redacts outgoing free-text fields of one record in place of a copy. */
export function redactOutgoing(
  fields: readonly string[],
  rules: readonly DlpRule[],
  record: CrmRecord,
  tally: DlpTally,
): CrmRecord {
  let out = record;
  for (const field of fields) {
    const text = record[field];
    if (typeof text !== 'string' || text === '') continue;
    const result = applyDlp(text, rules);
    if (result.findings.length === 0 && result.action === 'allow') continue;
    if (out === record) out = { ...record };
    out[field] = result.text;
    tally.add(result.findings.map((f) => f.kind));
  }
  return out;
}
