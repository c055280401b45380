export { openLocalSecretStore, type SecretStore } from './local.js';
export { probeContext, type KeyService } from './key-service.js';
export { openSecretService, referenceProblem, requireKeyService, type SecretService } from './open.js';
export { parseReference } from './vault.js';
export { importSecretFiles, openSecretStore, openStoredSecretStore } from './stored.js';
