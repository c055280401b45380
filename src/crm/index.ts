/**
 * The crm module: the connector interface every CRM backend implements, the field metadata with data
 * classes, the embedded CRM over the store, and the deterministic synthetic seed.
 */
export type {
  AggregateFn,
  AggregateGroup,
  AggregateRequest,
  Condition,
  CrmConnector,
  CrmIdentity,
  CrmObject,
  CrmRecord,
  CrmSurvey,
  DataClass,
  FieldMeta,
  Metric,
  FilterExpr,
  FilterOp,
  FilterValue,
  ObjectMeta,
  QueryRequest,
  VendorField,
} from './types.js';
export { crmObjects, encryptedFieldRefs, objectFromPlural } from './metadata.js';
export { createEmbeddedCrm } from './embedded.js';
export { createFieldKeys, type FieldKeys, type FieldKeyVersion } from './field-keys.js';
export { openStoredRecords } from './field-protection.js';
export { reencryptFields, type FieldProgress, type FieldReport, type ReencryptOptions } from './reencrypt.js';
export { createCrmConnector, type ConnectDeps, type ConnectedCrm } from './connect.js';
export { seedCrm, isCrmEmpty, type SeedOptions, type SeedResult } from './seed/seed.js';
export { nationalIdFor, phoneFor, type Country } from './seed/identity.js';
export { createHubSpotConnector, type HubSpotConnector, type HubSpotOptions } from './hubspot/connector.js';
export { startHubSpotFake, type HubSpotFake, type HubSpotFakeOptions } from './hubspot/fake.js';
export { seedHubSpotFake } from './hubspot/demo.js';
export { crmDispatcher } from './tls.js';
