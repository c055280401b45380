export { createDevIdp, type CreateDevIdpOptions, type DevIdp } from './provider.js';
export { mintDevIdToken, type MintDevIdTokenOptions } from './mint.js';
