import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import {
  activePlaybook,
  openControlSnapshot,
  openPolicyVersions,
  publishPlaybook,
  type ControlSnapshot,
} from '../control/index.js';
import {
  defaultPlaybookFile,
  loadPlaybook as loadPlaybookFile,
  parsePlaybook,
  type Playbook,
} from '../detect/index.js';
import type { PolicySet } from '../policy/index.js';
import { loadActivePolicySet, type PolicyVersions } from '../policy-library/index.js';
import type { Db } from '../store/index.js';

/** What a node serves from: the active policy library and playbook (the signing keys reload beside). */
export interface ControlState {
  readonly policy: PolicySet;
  readonly playbook: Playbook;
}

export interface NodeControl {
  readonly snapshot: ControlSnapshot<ControlState>;
  readonly versions: PolicyVersions;
  /** The playbook in force now, as detection takes it (it follows the snapshot). */
  readonly playbook: Playbook;
}

/**
 * The node's control snapshot, from the store: the data dir's older policy versions imported once, a
 * playbook file this node is configured with published, then everything read from the store and
 * reloaded when the control revision moves. `reloadKeys` re-reads the broker's key schedule then.
 */
export async function startControl(deps: {
  db: Db;
  config: Config;
  logger: Logger;
  reloadKeys(): Promise<void>;
  onPolicyProblem(problem: string | undefined, inForce: string): void;
}): Promise<NodeControl> {
  const { db, config, logger } = deps;
  const versions = await openPolicyVersions(db, config.dataDir);
  const ownPlaybook = configuredPlaybook(config);
  if (ownPlaybook) await publishPlaybook(db, ownPlaybook.text);
  const loadPlaybook = async () => {
    const stored = await activePlaybook(db);
    if (stored) return parsePlaybook(stored.text, `playbook version ${stored.version}`);
    const file = defaultPlaybookFile();
    return parsePlaybook(readFileSync(file, 'utf8'), file);
  };
  const snapshot = await openControlSnapshot<ControlState>({
    db,
    pollMs: config.control.pollMs,
    maxStalenessMs: config.control.maxStalenessMs,
    async load(previous) {
      if (previous) await deps.reloadKeys();
      const [policy, playbook] = await Promise.all([
        loadActivePolicySet(versions).catch((error: unknown) => {
          if (!previous) throw error;
          const problem = `${error instanceof Error ? error.message : 'the policy library failed to load'}; version ${previous.policy.version} stays in force`;
          deps.onPolicyProblem(problem, previous.policy.version);
          return previous.policy;
        }),
        loadPlaybook(),
      ]);
      if (previous && policy !== previous.policy) deps.onPolicyProblem(undefined, policy.version);
      return { policy, playbook };
    },
    onReload: (problem) => {
      if (problem) logger.error({ problem }, 'control state could not be reloaded; keeping the previous one');
    },
    onStale: (reason) => {
      if (reason)
        logger.error({ reason }, 'control state is stale: refusing requests until the store answers');
      else logger.info('control state confirmed with the store again: serving');
    },
  });
  const current = () => snapshot.current().playbook;
  return {
    snapshot,
    versions,
    playbook: {
      get version() {
        return current().version;
      },
      get source() {
        return current().source;
      },
      get throttle() {
        return current().throttle;
      },
      actionsFor: (rule, severity, scope) => current().actionsFor(rule, severity, scope),
    },
  };
}

/** A playbook file this node is configured with (`detect.playbook`, else `<dataDir>/playbooks.yaml`). */
function configuredPlaybook(config: Config): { file: string; text: string } | undefined {
  const file = config.detect.playbook
    ? resolve(config.dataDir, config.detect.playbook)
    : join(config.dataDir, 'playbooks.yaml');
  if (!config.detect.playbook && !existsSync(file)) return undefined;
  // Validated (ConfigError naming the file) before it is published to every node.
  loadPlaybookFile(file);
  return { file, text: readFileSync(file, 'utf8') };
}
