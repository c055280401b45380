export { openLocalSecretStore, type SecretStore } from './local.js';
export { importSecretFiles, openSecretStore, openStoredSecretStore } from './stored.js';
