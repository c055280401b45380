/** The public vocabulary of the crm module: objects, field metadata, records and the connector interface. */

export type CrmObject = 'account' | 'contact' | 'opportunity' | 'note';

export type DataClass = 'public' | 'internal' | 'pii' | 'financial' | 'health' | 'secret';

export interface FieldMeta {
  name: string;
  type: 'id' | 'string' | 'number' | 'date' | 'datetime';
  dataClass: DataClass;
  label: string;
}

export interface ObjectMeta {
  object: CrmObject;
  plural: string;
  fields: readonly FieldMeta[];
}

/** One record, or the part of it that was asked for; always includes `id`. */
export type CrmRecord = Record<string, string | number | null>;

/** A row condition. Every condition is pushed into the query, so a filtered-out row never leaves the store. */
export interface Condition {
  field: string;
  op: 'eq' | 'in';
  value: string | number | readonly (string | number)[];
}

/** A comparison of a filter expression: equal, not equal, greater, greater or equal, less, less or equal. */
export type FilterOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number;

/**
 * A boolean expression over fields, usually a client's `filter` parsed by the gateway. The connector
 * checks its field names against `describe()` (unknown: TypeError) and binds every value as a query
 * parameter. It is always ANDed with `where`, so no `or` or `not` in it can reach a row the row filter
 * excludes. A comparison with an empty (null) field is false, as in SQL: `ne` and `not` skip such rows.
 */
export type FilterExpr =
  | { readonly kind: 'compare'; readonly field: string; readonly op: FilterOp; readonly value: FilterValue }
  | { readonly kind: 'in'; readonly field: string; readonly values: readonly FilterValue[] }
  | { readonly kind: 'and' | 'or'; readonly items: readonly FilterExpr[] }
  | { readonly kind: 'not'; readonly item: FilterExpr };

export interface QueryRequest {
  /** Exactly the fields to return (`id` is always returned). */
  fields: readonly string[];
  /** All conditions must hold (AND). */
  where: readonly Condition[];
  /** A further expression every record must satisfy, ANDed with `where`. */
  filter?: FilterExpr;
  limit: number;
  /** The `nextCursor` of the previous page, as given; opaque. */
  cursor?: string;
}

export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max';

/** One metric of an aggregate; `field` names a number field (min and max also take dates), absent for count. */
export interface Metric {
  fn: AggregateFn;
  field?: string;
}

export interface AggregateRequest {
  /** The field whose values form the groups; one group of everything when absent. */
  groupBy?: string;
  /** Groups by the month (`YYYY-MM`) of a date `groupBy` rather than by its value. */
  bucket?: 'month';
  metrics: readonly Metric[];
  /** All conditions must hold (AND); the row filter goes here, inside the query. */
  where: readonly Condition[];
  /** A further expression every aggregated record must satisfy, ANDed with `where`. */
  filter?: FilterExpr;
  /** At most this many groups, in the order of the group value. */
  limit: number;
}

export interface AggregateGroup {
  /** The group's value of `groupBy`; null for the single group when there is no groupBy. */
  key: string | number | null;
  /** Records in the group. */
  count: number;
  /** One value per requested metric, in order; null when the group holds no value for it. */
  values: (number | string | null)[];
}

/** A field a vendor's CRM offers, what its metadata says, and the Gatehouse field mapped onto it. */
export interface VendorField {
  name: string;
  label: string;
  type: string;
  /** Encrypted at rest by the CRM (Salesforce Shield). */
  encrypted?: boolean;
  /** The CRM's own classification, as it states it (Salesforce: compliance group, sensitivity level). */
  classification?: string;
  /** The Gatehouse field it holds; absent when nothing maps onto it. */
  mappedTo?: string;
  /** The data class its metadata suggests; absent when it says nothing sensitive. */
  suggested?: DataClass;
}

/** The CRM's own user for a Gatehouse user, and the attributes the CRM keeps for them. */
export interface CrmIdentity {
  /** The CRM's user id (what owner fields hold). */
  readonly crmUserId: string;
  readonly email: string;
  readonly federationId?: string;
  readonly territory?: string;
}

/** What a live CRM offers for one Gatehouse object (`gatehouse crm describe`). */
export interface CrmSurvey {
  object: CrmObject;
  /** The vendor's object (Salesforce `Contact`, HubSpot `contacts`). */
  vendorObject: string;
  fields: VendorField[];
}

/**
 * What Gatehouse needs from a CRM. The embedded CRM implements it over the store; Salesforce, HubSpot
 * and PostgreSQL-backed connectors implement the same interface and run the same tests.
 *
 * Field names and condition fields are checked against `describe()`: an unknown one is a programming
 * mistake of the caller (TypeError) and never reaches the backend. Values and cursors may come from
 * untrusted clients: a bad one is an InputError (INVALID_INPUT).
 */
export interface CrmConnector {
  readonly name: string;
  describe(object: CrmObject): ObjectMeta;
  /** The record, or undefined when it is missing OR excluded by `where` (indistinguishable on purpose). */
  get(
    object: CrmObject,
    id: string,
    fields: readonly string[],
    where: readonly Condition[],
  ): Promise<CrmRecord | undefined>;
  /** One page in a stable order (by id), keyset-paginated; `nextCursor` is absent on the last page. */
  query(object: CrmObject, req: QueryRequest): Promise<{ records: CrmRecord[]; nextCursor?: string }>;
  /** How many records satisfy `where` and, when given, `filter`. */
  count(object: CrmObject, where?: readonly Condition[], filter?: FilterExpr): Promise<number>;
  /** Creates a record and answers with `id` and the fields written, as stored. */
  create(object: CrmObject, values: CrmRecord): Promise<CrmRecord>;
  /** Updates a record visible under `where`; undefined when missing or excluded. */
  update(
    object: CrmObject,
    id: string,
    values: CrmRecord,
    where: readonly Condition[],
  ): Promise<CrmRecord | undefined>;
  /** Deletes a record visible under `where` (and what hangs off it); false when missing or excluded. */
  delete(object: CrmObject, id: string, where: readonly Condition[]): Promise<boolean>;
  /** Counts and metrics per group over the records `where` admits; `truncated` when more groups exist than `limit`. */
  aggregate(
    object: CrmObject,
    req: AggregateRequest,
  ): Promise<{ groups: AggregateGroup[]; truncated: boolean }>;
  /** What the connected CRM offers per object and how it maps; vendor connectors only (the embedded CRM is its own metadata). */
  survey?(): Promise<CrmSurvey[]>;
  /**
   * Which CRM user a Gatehouse user is (by e-mail or federation id, per configuration), from a directory
   * the connector refreshes on a schedule; undefined when the CRM knows no such active user.
   */
  identity?(user: { email: string; federationId?: string }): CrmIdentity | undefined;
}
