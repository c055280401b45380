/**
 * The control state every node serves from, kept in the store rather than in a data dir: published
 * policy versions and playbooks (versioned, the active one by activation), one snapshot of it per node
 * with one staleness bound that fails closed (DESIGN.md, "Embedded by default, distributed when outgrown").
 */
export { refuseWhileStale } from './guard.js';
export { openPolicyVersions, storedPolicyVersions } from './policy-versions.js';
export { openControlSnapshot, type ControlSnapshot, type ControlSnapshotOptions } from './snapshot.js';
export { activePlaybook, publishPlaybook } from './playbooks.js';
