/** Every table Gatehouse keeps. Columns are portable types so SQLite and PostgreSQL share queries. */
export interface Database {
  meta: { key: string; value: string };
  apps: {
    id: string;
    client_id: string;
    name: string;
    owner: string;
    status: string;
    /** JSON array of approved scopes. */
    scopes: string;
    /** JSON of the submitted manifest. */
    manifest: string;
    created_at: string;
    updated_at: string;
    // 005_catalog: the lifecycle (src/catalog/apps.ts reads them; null on rows made before it).
    requested_by: string | null;
    approved_by: string | null;
    approved_at: string | null;
    approved_until: string | null;
    review_reason: string | null;
    /** JSON of the last admission decision. */
    admission: string | null;
    /** `|internal|pii|`: every data class the plan touches, delimited for portable `like` filters. */
    data_classes: string | null;
    risk_score: number | null;
    /** JSON of the runtime constraints an approval gave. */
    constraints: string | null;
    /** JSON of a plan change waiting for review; the approved scopes stay in force meanwhile. */
    pending: string | null;
    /** JSON of the last bundle scan's summary. */
    scan: string | null;
    last_used_at: string | null;
    unused_notified_at: string | null;
    /** `sha256:…` of the bundle whose server-made scan is in `scan`. */
    bundle_digest: string | null;
    /** `sha256:…` of the bundle the approval in force covers; the deploy gate compares against it. */
    approved_digest: string | null;
  };
  crm_accounts: CrmRow & {
    name: string;
    industry: string;
    annual_revenue: number;
  };
  crm_contacts: CrmRow & {
    account_id: string;
    first_name: string;
    last_name: string;
    title: string;
    email: string;
    phone: string;
    date_of_birth: string;
    national_id: string;
    /** Sorted JSON array of the purposes the contact consented to. */
    consent: string;
  };
  crm_opportunities: CrmRow & {
    account_id: string;
    name: string;
    stage: string;
    amount: number;
    close_date: string;
  };
  crm_notes: CrmRow & {
    body: string;
    author: string;
    account_id: string | null;
    contact_id: string | null;
    opportunity_id: string | null;
  };
  audit_events: {
    /** 0-based position of the leaf in the Merkle log. */
    idx: number;
    /** RFC 8785 canonical JSON of the event: exactly the bytes that were hashed. */
    event: string;
    /** Hex SHA-256(0x00 ‖ event). */
    leaf_hash: string;
    request_id: string;
    app_id: string | null;
    created_at: string;
  };
  audit_checkpoints: {
    size: number;
    root_hash: string;
    note: string;
    created_at: string;
  };
  /** Witness cosignatures of checkpoints (migration 025_audit_cosignatures, src/audit/witnessing.ts). */
  audit_cosignatures: {
    size: number;
    witness: string;
    /** The C2SP cosignature line, with its newline. */
    line: string;
    created_at: string;
  };
  /** Hashes of complete subtrees: level L, index i covers leaves [i·2^L, (i+1)·2^L). */
  audit_nodes: { level: number; idx: number; hash: string };
  /** PostgreSQL: events queued by any node for the one audit sequencer, until integrated (migrations 009, 031). */
  audit_queue: {
    /** `<node id>:<counter>`: unique, and in a node's append order within one queued_at. */
    id: string;
    /** RFC 8785 canonical JSON of the event, as it will be hashed. */
    event: string;
    queued_at: string;
  };
}

interface CrmRow {
  id: string;
  territory: string;
  owner: string;
  created_at: string;
  updated_at: string;
}
