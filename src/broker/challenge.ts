import type { TokenError } from '../errors/index.js';
import { dpopAlgorithms } from './dpop.js';

/**
 * The `WWW-Authenticate` of a 401 (RFC 6750 §3, RFC 9449 §7.1): both schemes, so a client learns to
 * refresh or sign in again whichever it uses. No error code when no token was sent (RFC 6750 §3.1).
 */
export function authenticateChallenge(error: TokenError): string {
  const algs = `algs="${dpopAlgorithms.join(' ')}"`;
  if (error.code === 'TOKEN_MISSING') return `Bearer realm="gatehouse", DPoP realm="gatehouse", ${algs}`;
  const code = error.code === 'TOKEN_DPOP_INVALID' ? 'invalid_dpop_proof' : 'invalid_token';
  return `Bearer realm="gatehouse", error="${code}", DPoP realm="gatehouse", error="${code}", ${algs}`;
}
