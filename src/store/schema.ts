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
  /** Hashes of complete subtrees: level L, index i covers leaves [i·2^L, (i+1)·2^L). */
  audit_nodes: { level: number; idx: number; hash: string };
}

interface CrmRow {
  id: string;
  territory: string;
  owner: string;
  created_at: string;
  updated_at: string;
}
