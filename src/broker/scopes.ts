import { OAuthError } from '../errors/index.js';

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const maxScopes = 64;

/**
 * Platform duties, not CRM data: granted only through the console client's authorization code flow
 * with the user present, never by token exchange and never by elevation.
 */
export const platformScopes: readonly string[] = ['admin', 'review', 'audit:read', 'maker'];

/** The scopes of a `scope` parameter, in order and without duplicates. */
export function parseScope(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') {
    throw new OAuthError('OAUTH_INVALID_SCOPE', 'ask for at least one scope');
  }
  // Attacker-controlled: checked token by token before any scope is echoed in a message.
  const scopes = [...new Set(value.split(' ').filter(Boolean))];
  if (scopes.length > maxScopes || !scopes.every((scope) => scopeToken.test(scope))) {
    throw new OAuthError('OAUTH_INVALID_SCOPE', 'the scope parameter is malformed');
  }
  return scopes;
}

/**
 * Granted = requested ∩ approved for the app ∩ allowed for the user's role. A scope the app was never
 * approved for is an error (the app asked for more than its security plan); a scope the user's role
 * does not allow is dropped; nothing left is an error.
 */
export function grantScopes(
  requested: readonly string[],
  approved: readonly string[],
  allowed: readonly string[],
): string[] {
  const unapproved = requested.filter((scope) => !approved.includes(scope));
  if (unapproved.length > 0) {
    throw new OAuthError('OAUTH_INVALID_SCOPE', `not approved for this app: ${unapproved.join(' ')}`);
  }
  const granted = requested.filter((scope) => allowed.includes(scope));
  if (granted.length === 0) {
    throw new OAuthError(
      'OAUTH_INVALID_SCOPE',
      "none of the requested scopes is allowed for this user's role",
    );
  }
  return granted;
}
