import { expect } from 'vitest';
import type { Demo } from './demo.js';

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  [key: string]: unknown;
}

export type Row = Record<string, string | number | null>;

export interface Page {
  records: Row[];
  next_cursor: string | null;
}

export interface AuditRow {
  index: number;
  leaf_hash: string;
  event: Record<string, string>;
}

export async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

/** Asserts an RFC 7807 answer with the status and code; answers the problem document. */
export async function expectProblem(response: Response, status: number, code: string): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  const problem = await json<Problem>(response);
  expect(problem.code).toBe(code);
  return problem;
}

/** The audit events recorded for one request, read through the auditor's API. */
export async function auditEventsOf(
  demo: Demo,
  auditorToken: string,
  requestId: string,
): Promise<AuditRow[]> {
  const response = await demo.get(`/audit/v1/events?request_id=${requestId}`, auditorToken);
  expect(response.status).toBe(200);
  return (await json<{ records: AuditRow[] }>(response)).records;
}

/** The request id of an answer, which every answer carries. */
export function requestIdOf(response: Response): string {
  const id = response.headers.get('x-request-id');
  expect(id).toBeTruthy();
  return id as string;
}

/**
 * A contact on one of the accounts `owner` owns, as `token` (which reads accounts and contacts) sees it:
 * the notes app writes notes only on the accounts assigned to the rep (runtime.notes-on-assigned-accounts).
 */
export async function ownAccountContact(demo: Demo, token: string, owner: string): Promise<Row> {
  const ownerFilter = encodeURIComponent(`owner eq '${owner}'`);
  const accounts = await json<Page>(
    await demo.get(`/crm/v1/accounts?limit=5&fields=owner&filter=${ownerFilter}`, token),
  );
  const ids = accounts.records.map((r) => `'${String(r.id)}'`).join(',');
  const contactFilter = encodeURIComponent(`account_id in (${ids})`);
  const contacts = await json<Page>(
    await demo.get(`/crm/v1/contacts?limit=1&filter=${contactFilter}`, token),
  );
  const contact = contacts.records[0];
  if (!contact) throw new Error(`no contact on an account of ${owner}`);
  return contact;
}
