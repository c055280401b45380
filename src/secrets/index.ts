export { openLocalSecretStore, type SecretStore } from './local.js';
