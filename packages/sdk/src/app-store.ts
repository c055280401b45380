import { governedFetch, type CrmClientOptions } from './crm.js';
import { GatehouseProblem } from './errors.js';

/** A document of the governed app data store, as Gatehouse keeps it for this app and user. */
export interface AppStoreDocument<T = unknown> {
  collection: string;
  key: string;
  data: T;
  data_classes: string[];
  subject_ids: string[];
  bytes: number;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

export type AppStoreSummary = Omit<AppStoreDocument, 'data'>;

export interface AppStoreClient {
  /** The document, or undefined when this app and user have none at that key. */
  get<T = unknown>(collection: string, key: string): Promise<AppStoreDocument<T> | undefined>;
  /** Stores `data`, tagged with the data classes it holds and the CRM contacts it is about. */
  put(
    collection: string,
    key: string,
    data: unknown,
    tags: { dataClasses: string[]; subjectIds?: string[] },
  ): Promise<AppStoreSummary>;
  delete(collection: string, key: string): Promise<void>;
  list(
    collection: string,
    page?: { cursor?: string; limit?: number },
  ): Promise<{ records: AppStoreSummary[]; next_cursor: string | null }>;
}

/**
 * The governed app data store (`/apps/v1/store`): where an app keeps what it derives from CRM data. The
 * token needs `app:store`; refusals throw typed errors like the CRM client's.
 */
export function createAppStoreClient(options: CrmClientOptions): AppStoreClient {
  const send = governedFetch(options);
  const url = (collection: string, key?: string) =>
    new URL(
      `/apps/v1/store/${encodeURIComponent(collection)}${key === undefined ? '' : `/${encodeURIComponent(key)}`}`,
      options.baseUrl,
    );
  return {
    async get<T>(collection: string, key: string) {
      try {
        return (await (await send(new Request(url(collection, key)))).json()) as AppStoreDocument<T>;
      } catch (error) {
        if (error instanceof GatehouseProblem && error.status === 404) return undefined;
        throw error;
      }
    },
    async put(collection, key, data, tags) {
      const body = JSON.stringify({
        data,
        data_classes: tags.dataClasses,
        subject_ids: tags.subjectIds ?? [],
      });
      const request = new Request(url(collection, key), {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return (await (await send(request)).json()) as AppStoreSummary;
    },
    async delete(collection, key) {
      await send(new Request(url(collection, key), { method: 'DELETE' }));
    },
    async list(collection, page = {}) {
      const target = url(collection);
      if (page.cursor !== undefined) target.searchParams.set('cursor', page.cursor);
      if (page.limit !== undefined) target.searchParams.set('limit', String(page.limit));
      return (await (await send(new Request(target))).json()) as {
        records: AppStoreSummary[];
        next_cursor: string | null;
      };
    },
  };
}
