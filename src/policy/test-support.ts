import { authorizeRequest, createPolicyCaches, type AuthorizeInput } from './authorize.js';
import { recordDecision, type RecordedDecision } from './decisions.js';
import type { PolicySet } from './library.js';
import type { Principal } from './runtime.js';

/** Principals shared by the policy tests (not exported from the module). */

export function principal(
  userId: string,
  role: string,
  territory: string | undefined,
  appId = 'call-notes',
): Principal {
  return {
    userId,
    email: `${userId}@example.com`,
    role,
    territory,
    appId,
    clientId: appId,
    scopes: ['read:contact.basic'],
  };
}

export const alice = principal('alice', 'sales_rep', 'EMEA');
export const bob = principal('bob', 'sales_manager', 'EMEA', 'pipeline-dashboard');
export const erin = principal('erin', 'sales_rep', 'NA');
export const dave = principal('dave', 'admin', undefined, 'console');

/**
 * Records decisions of `policies()` (read when called: test files load the library in beforeAll) for
 * one read of first_name from 10.1.2.0/24, with one set of caches, as a node has.
 */
export function decisionRecorder(policies: () => PolicySet) {
  const caches = createPolicyCaches();
  return (requestId: string, input: Omit<AuthorizeInput, 'context'>, at = new Date()): RecordedDecision => {
    const full = {
      ...input,
      context: { fields: ['first_name'], recordCount: 1, ip: '10.1.2.0/24', time: at },
    };
    return recordDecision(requestId, full, authorizeRequest(policies(), full, caches));
  };
}
