import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { defaultPolicyDir, loadActivePolicySet, loadPolicySet } from '../policy-library/index.js';
import { openGatehouseStore } from '../database/index.js';
import { readControlRevision, type Store } from '../store/index.js';
import { dropTestDatabase, testDatabase } from '../../test/support/database.js';
import { openPolicyVersions } from './index.js';

const opened: Array<{ dir: string; store: Store }> = [];
afterEach(async () => {
  for (const { dir, store } of opened.splice(0)) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  }
});

describe('policy versions in the store', () => {
  it("import a data dir's published versions and its pointer once, and a later publish stays active", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-control-'));
    const store = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
    );
    opened.push({ dir, store });
    // The layout `gatehouse policy publish` wrote before versions lived in the store.
    const { version } = await loadPolicySet();
    cpSync(defaultPolicyDir(), join(dir, 'policies', 'versions', version), { recursive: true });
    writeFileSync(join(dir, 'policies', 'current'), `${version}\n`);

    const versions = await openPolicyVersions(store.db, dir);
    expect(await versions.active()).toBe(version);
    const active = await loadActivePolicySet(versions);
    expect(active.version).toBe(version);
    expect(active.tests?.length).toBeGreaterThan(0);
    expect(await readControlRevision(store.db)).toBe(1);

    // Another version activated since: importing again neither copies nor re-activates anything.
    await versions.put('0123456789ab', active.files, []);
    await versions.activate('0123456789ab');
    await openPolicyVersions(store.db, dir);
    expect(await versions.active()).toBe('0123456789ab');
    expect(await readControlRevision(store.db)).toBe(2);
  });
});
