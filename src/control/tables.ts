import type { Generated, Kysely } from 'kysely';
import type { Db } from '../store/index.js';

/** The control state's tables (migration 027_control_state). */
export interface ControlTables {
  control_policy_versions: {
    version: string;
    /** JSON list of `{ path, text }`: the library's files. */
    files: string;
    /** JSON list of `{ path, text }`: its test cases. */
    tests: string;
    created_at: string;
  };
  control_playbooks: { version: string; text: string; created_at: string };
  /** Append-only: the active version of a kind is the one activated last. */
  control_activations: {
    seq: Generated<number>;
    kind: 'policy' | 'playbook';
    version: string;
    activated_at: string;
  };
}

export type ControlDb = Kysely<ControlTables>;

export const controlDb = (db: Db): ControlDb => db as unknown as ControlDb;
