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
