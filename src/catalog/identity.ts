/**
 * The one comparison form of an e-mail address, used wherever an identity is compared (offboarding,
 * revocation, roles, reviewers): Unicode NFKC, trimmed, lower-cased. An e-mail is an attribute of a
 * user; the immutable key is the IdP's `sub`.
 */
export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}
