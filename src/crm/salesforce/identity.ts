import type { CrmIdentity } from '../types.js';
import type { SalesforceClient } from './client.js';
import { soqlLiteral, soqlSelect } from './soql.js';

/**
 * Which Salesforce user a Gatehouse user is, and the attributes the org holds for them (territory,
 * and the user id records are owned by). Read for all active users at once and again on a schedule,
 * so a request never waits on Salesforce for it, and a user deactivated in Salesforce drops out at the
 * next refresh.
 */

export interface IdentityDirectory {
  /** The CRM user of a Gatehouse user, by the configured key; undefined when none (or not read yet). */
  lookup(user: { email: string; federationId?: string }): CrmIdentity | undefined;
  /** Reads every active user again; a failure keeps the previous directory and is rethrown. */
  refresh(): Promise<void>;
  /** When the directory was last read (ms since the epoch); 0 before the first read. */
  readonly refreshedAt: number;
  stop(): void;
}

const pageSize = 2000;

export function createIdentityDirectory(
  client: SalesforceClient,
  options: {
    match: 'email' | 'federationIdentifier';
    refreshSeconds: number;
    onError?: (error: unknown) => void;
    now?: () => number;
  },
): IdentityDirectory {
  const now = options.now ?? Date.now;
  let byKey = new Map<string, CrmIdentity>();
  let refreshedAt = 0;
  const keyOf = (value: string) => value.trim().toLowerCase();

  async function readAll(): Promise<Map<string, CrmIdentity>> {
    const found = new Map<string, CrmIdentity>();
    let after: string | undefined;
    for (;;) {
      const where = ['IsActive = true', ...(after ? [`Id > ${soqlLiteral(after, 'id')}`] : [])];
      const soql = soqlSelect({
        fields: ['Id', 'Email', 'FederationIdentifier', 'Gatehouse_Territory__c'],
        from: 'User',
        where,
        orderBy: 'Id ASC',
        limit: pageSize,
      });
      const { records } = await client.query(soql, pageSize);
      for (const record of records) {
        const identity: CrmIdentity = {
          crmUserId: String(record.Id),
          email: String(record.Email ?? ''),
          ...(typeof record.FederationIdentifier === 'string'
            ? { federationId: record.FederationIdentifier }
            : {}),
          ...(typeof record.Gatehouse_Territory__c === 'string'
            ? { territory: record.Gatehouse_Territory__c }
            : {}),
        };
        const key = options.match === 'email' ? identity.email : identity.federationId;
        // Two users with one key would make the mapping ambiguous: neither is taken.
        if (!key) continue;
        if (found.has(keyOf(key))) found.set(keyOf(key), { ...identity, crmUserId: '' });
        else found.set(keyOf(key), identity);
      }
      if (records.length < pageSize) break;
      after = String(records[records.length - 1]?.Id);
    }
    for (const [key, identity] of found) if (identity.crmUserId === '') found.delete(key);
    return found;
  }

  const directory: IdentityDirectory = {
    lookup(user) {
      const key = options.match === 'email' ? user.email : user.federationId;
      return key ? byKey.get(keyOf(key)) : undefined;
    },
    async refresh() {
      byKey = await readAll();
      refreshedAt = now();
    },
    get refreshedAt() {
      return refreshedAt;
    },
    stop() {
      clearInterval(timer);
    },
  };
  const timer = setInterval(() => {
    directory.refresh().catch((error: unknown) => options.onError?.(error));
  }, options.refreshSeconds * 1000);
  timer.unref();
  return directory;
}
