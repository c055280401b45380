import type { CreateDevIdpOptions, DevIdp } from './provider.js';

export type { CreateDevIdpOptions, DevIdp } from './provider.js';
export { mintDevIdToken, type MintDevIdTokenOptions } from './mint.js';

/**
 * Starts the development IdP. oidc-provider is loaded only here, so commands that merely mint a demo
 * ID token start fast and without its runtime warning.
 */
export async function createDevIdp(options: CreateDevIdpOptions): Promise<DevIdp> {
  const provider = await import('./provider.js');
  return provider.createDevIdp(options);
}
export { signInAtDevIdp, type DevSignInOptions } from './sign-in.js';
