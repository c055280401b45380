/**
 * The governed app data store over HTTP (CONTRACT.md "Microapps"), for tokens holding `app:store`:
 *
 *   GET    /apps/v1/store/:collection?limit&cursor   { records: [summary], next_cursor }
 *   GET    /apps/v1/store/:collection/:key           the document
 *   PUT    /apps/v1/store/:collection/:key           { data, data_classes, subject_ids? } → 201 | 200
 *   DELETE /apps/v1/store/:collection/:key           204
 *
 * The app and user come from the token only. Every call is audited (collection/key and classes, never
 * the document); a write or delete records its intent durably before the store changes.
 */
import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors/index.js';
import { parsePutDocument, type AppStore } from './app-store.js';
import type { Governance } from './governance.js';

export const appStoreScope = 'app:store';
const scopes = [appStoreScope];
const resourceType = 'app_store';

type Params = { Params: { collection: string; key: string } };

export function registerAppStoreRoutes(
  app: FastifyInstance,
  deps: { governance: Governance; store: AppStore },
): void {
  const { governance, store } = deps;
  void app.register(async (scope) => {
    governance.recordRefusals(scope, 'store.refused', resourceType);

    scope.get<{ Params: { collection: string } }>('/apps/v1/store/:collection', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'store.list', resourceType, scopes },
        async (caller, record) => {
          record.resourceId = request.params.collection;
          const q = request.query as Record<string, unknown>;
          const page = await store.list(owner(caller), request.params.collection, {
            cursor: optionalText(q.cursor, 'cursor'),
            limit: limitOf(q.limit),
          });
          record.recordCount = page.records.length;
          record.reason = `${page.records.length} documents listed`;
          return { records: page.records, next_cursor: page.next_cursor ?? null };
        },
      ),
    );

    scope.get<Params>('/apps/v1/store/:collection/:key', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'store.read', resourceType, scopes },
        async (caller, record) => {
          record.resourceId = place(request.params);
          const document = await store.get(owner(caller), request.params.collection, request.params.key);
          record.recordCount = 1;
          record.reason = `read a document of classes ${document.data_classes.join(',')}`;
          return document;
        },
      ),
    );

    scope.put<Params>('/apps/v1/store/:collection/:key', (request, reply) =>
      governance.call(
        request,
        reply,
        { action: 'store.write', resourceType, scopes },
        async (caller, record, beforeChange) => {
          record.resourceId = place(request.params);
          const document = parsePutDocument(request.body);
          await beforeChange();
          const stored = await store.put(
            owner(caller),
            request.params.collection,
            request.params.key,
            document,
          );
          record.recordCount = 1;
          record.reason = `${stored.created ? 'created' : 'replaced'} a document of classes ${stored.document.data_classes.join(',')} (${stored.document.bytes} bytes)`;
          void reply.code(stored.created ? 201 : 200);
          return stored.document;
        },
      ),
    );

    scope.delete<Params>('/apps/v1/store/:collection/:key', async (request, reply) => {
      await governance.call(
        request,
        reply,
        { action: 'store.delete', resourceType, scopes },
        async (caller, record, beforeChange) => {
          record.resourceId = place(request.params);
          await beforeChange();
          await store.delete(owner(caller), request.params.collection, request.params.key);
          record.recordCount = 1;
          record.reason = 'deleted a document';
        },
      );
      return reply.code(204).send();
    });
  });
}

function owner(caller: { appId: string; userId: string }) {
  return { appId: caller.appId, userId: caller.userId };
}

function place(params: { collection: string; key: string }): string {
  // Names only what the path named, bounded: the event never carries the document.
  return `${params.collection.slice(0, 128)}/${params.key.slice(0, 128)}`;
}

function optionalText(value: unknown, parameter: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`${parameter} must be given once`, { parameter });
  return value;
}

function limitOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,2}$/.test(value)) {
    throw new InputError('limit must be between 1 and 500', { parameter: 'limit' });
  }
  return Number(value);
}
