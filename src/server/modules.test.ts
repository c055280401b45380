import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import { auditLogOptions } from './index.js';

const config = loadConfig({
  env: {},
  overrides: {
    dataDir: '/nonexistent',
    'database.sequencerLeaseMs': 4000,
    'audit.witnesses': [{ name: 'w', url: 'https://witness.example', vkey: 'k' }],
  },
});
const deps = { db: {} as Db, secrets: {} as SecretStore, onSequencerChange: () => undefined };

describe('how each role opens the audit log', () => {
  it('the CLI appends as a client: no sequencer lease, no sequencer reports, no witnesses', () => {
    const options = auditLogOptions(config, 'cli', deps);
    expect(options.role).toBe('client');
    expect(options).not.toHaveProperty('sequencerLeaseMs');
    expect(options).not.toHaveProperty('onSequencerChange');
    expect(options).not.toHaveProperty('witnessing');
  });

  it('a serving node competes for the sequencer with the configured lease and asks the witnesses', () => {
    const options = auditLogOptions(config, 'serve', deps);
    expect(options).toMatchObject({ role: 'node', sequencerLeaseMs: 4000 });
    expect(options.onSequencerChange).toBe(deps.onSequencerChange);
    expect(options.witnessing?.witnesses).toHaveLength(1);
  });
});
