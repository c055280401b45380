/**
 * The app lifecycle: registration judged by the admission policy, the reviewer's approval or denial,
 * plan changes, suspension, restoration, retirement and transfer. Each change is appended to the audit
 * trail before it is made (a change is never left unrecorded) and kept in `app_history`; suspension and
 * retirement revoke every token of the app.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent } from '../audit/index.js';
import type { Config } from '../config/index.js';
import { AccessDenied, CatalogError, InputError, NotFound } from '../errors/index.js';
import {
  judgeManifest,
  parseManifest,
  type AdmissionResult,
  type Manifest,
  type PolicySet,
} from '../policy/index.js';
import type { ScanSummary } from '../scan/index.js';
import type { Db } from '../store/index.js';
import type { Egress } from '../egress/index.js';
import type { BundleScan } from './bundle.js';
import { challengeAuditHook } from './hook-challenge.js';
import { normaliseEmail } from './identity.js';
import {
  createCatalog,
  delimited,
  type AdmissionRecord,
  type App,
  type AppStatus,
  type Catalog,
  type PendingChange,
} from './apps.js';
import { constraintsFor } from './constraints.js';
import {
  appliesAtOnce,
  assertSeparateDuties,
  assertStep,
  consentWarnings,
  droppedScopes,
  purposeInForce,
  residencyOf,
  restoreTarget,
  stateAfter,
} from './rules.js';
import { catalogDb, type CatalogDb, type CatalogTables } from './tables.js';

/** Who acts: an email, or `policy`, `system`, `detect`, `cli`; the role goes into the audit event. */
export interface Actor {
  readonly id: string;
  readonly role: string;
}

export interface LifecycleDeps {
  readonly db: Db;
  readonly config: Pick<Config, 'catalog' | 'scopes' | 'gateway'>;
  /** The admission library in force. */
  /** The policy set admission judges by; loaded on first use where loading is costly (the CLI). */
  readonly policies: () => PolicySet | Promise<PolicySet>;
  readonly audit: { append(event: AuditEvent): Promise<unknown> };
  /** Outbound calls (the audit hook's challenge), refused at connect time unless the address is permitted. */
  readonly egress: Egress;
  /** Revokes every token of an app or a user; resolves once running servers refuse them. */
  revokeTokens(
    target: { appId?: string; userId?: string },
    options: { reason: string; actor: string },
  ): Promise<unknown>;
  /** Records per CRM table, for the admission policy's 1% rule; unknown sizes count as 0. */
  readonly tableSizes?: () => Promise<Partial<Record<string, number>>>;
  readonly now?: () => Date;
}

export interface ChangeOptions {
  readonly by: Actor;
  readonly reason: string;
  /** The request that asked for the change; its id correlates the audit events. */
  readonly requestId?: string;
}

export interface PlanInput {
  readonly manifest: unknown;
  readonly by: Actor;
  /** Admins register and change apps for anyone; makers only their own. */
  readonly admin: boolean;
  /** Gatehouse's own scan of the app's bundle (scanUploadedBundle, scanBundleAt); never a caller's summary. */
  readonly bundle?: BundleScan;
  readonly requestId?: string;
}

export interface Registration {
  readonly app: App;
  /** approve, review or deny: what the admission policy said of this plan. */
  readonly admission: AdmissionRecord;
  /** For a change of an approved app: whether it applied at once or waits for a reviewer. */
  readonly change?: 'applied' | 'pending';
}

export interface Lifecycle {
  readonly catalog: Catalog;
  register(input: PlanInput): Promise<Registration>;
  /** A new plan for an existing app (its name and owner stay). */
  update(appId: string, input: PlanInput): Promise<Registration>;
  /** A newly scanned bundle for the app's plan in force (or waiting): admission is asked again. */
  submitBundle(
    appId: string,
    bundle: BundleScan,
    input: Omit<PlanInput, 'manifest' | 'bundle'>,
  ): Promise<Registration>;
  /** The deploy gate: refuses (BUNDLE_NOT_APPROVED) unless the app is approved for exactly this digest. */
  checkDeploy(appId: string, digest: string): Promise<App>;
  approve(appId: string, options: ChangeOptions): Promise<App>;
  deny(appId: string, options: ChangeOptions): Promise<App>;
  /** Idempotent: suspending a suspended app revokes its tokens again and changes nothing else. */
  suspendApp(appId: string, options: ChangeOptions): Promise<App>;
  restoreApp(appId: string, options: ChangeOptions): Promise<App>;
  retire(appId: string, options: ChangeOptions): Promise<App>;
  transfer(appId: string, newOwner: string, options: ChangeOptions): Promise<App>;
  /** Records every approval that has lapsed (the catalog already treats them as in review). */
  expireApprovals(): Promise<App[]>;
}

const day = 86_400_000;
const maxReason = 500;

export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const now = deps.now ?? (() => new Date());
  const db = catalogDb(deps.db);
  const catalog = createCatalog(deps.db, { now });
  const { catalog: settings } = deps.config;
  const consent = deps.config.gateway.consent;

  async function mustFind(appId: string): Promise<App> {
    const app = await catalog.findApp(appId);
    if (!app) throw new NotFound(`no app ${appId}; see gatehouse app list`);
    return app;
  }

  function parse(input: unknown): Manifest {
    return parseManifest(input, { fieldsets: deps.config.scopes, consentPurposes: consent.purposes });
  }

  /**
   * Challenges the plan's audit hook (each time admission is asked: consent is proved, not remembered)
   * and records the answer; the hook stands in for telemetry only when it echoed the challenge.
   */
  async function auditHookVerified(manifest: Manifest, by: Actor, requestId?: string): Promise<boolean> {
    if (manifest.audit_hook === undefined) return false;
    const result = await challengeAuditHook(deps.egress, manifest.name, manifest.audit_hook);
    const origin = new URL(manifest.audit_hook).origin;
    await deps.audit.append({
      ...changeEvent(manifest.name, 'audit_hook.challenge', '', '', '', by, now().toISOString(), requestId),
      outcome: result.verified ? 'allow' : 'deny',
      reason: result.verified
        ? `audit hook ${origin} answered the signed challenge`
        : `audit hook ${origin} ${result.problem ?? 'failed'}: it does not count as telemetry`.slice(
            0,
            maxReason,
          ),
    });
    return result.verified;
  }

  async function judge(
    manifest: Manifest,
    context: { approved: boolean; scan?: ScanSummary; by: Actor; requestId?: string },
  ): Promise<AdmissionRecord> {
    const result: AdmissionResult = judgeManifest(await deps.policies(), manifest, {
      fieldsets: deps.config.scopes,
      consentPurposes: consent.purposes,
      tableSizes: deps.tableSizes ? await deps.tableSizes() : undefined,
      approved: context.approved,
      auditHookVerified: await auditHookVerified(manifest, context.by, context.requestId),
      ...(context.scan ? { scan: context.scan } : {}),
    });
    if (result.decision === 'invalid') throw new InputError(`invalid manifest: ${result.errors.join('; ')}`);
    const { read_objects, write_objects } = result.enrichment;
    const configured = Object.hasOwn(consent.appPurposes, manifest.name)
      ? consent.appPurposes[manifest.name]
      : undefined;
    const warnings = consentWarnings(
      manifest,
      [...read_objects, ...write_objects],
      configured,
      consent.purposes,
    );
    return {
      decision: result.decision,
      rules: result.rules.map(({ id, effect, reason }) => ({ id, effect, reason })),
      policy_version: result.version,
      risk_score: result.enrichment.risk_score,
      data_classes: result.enrichment.data_classes,
      decided_at: now().toISOString(),
      ...(warnings.length > 0 && { warnings }),
    };
  }

  function approval(at: Date, by: string, manifest: Manifest, digest: string | undefined) {
    return {
      approved_digest: digest ?? null,
      approved_by: by,
      approved_at: at.toISOString(),
      approved_until: new Date(at.getTime() + settings.approvalDays * day).toISOString(),
      constraints: JSON.stringify(constraintsFor(manifest, settings.quota)),
    };
  }

  function planColumns(manifest: Manifest, admission: AdmissionRecord) {
    return {
      manifest: JSON.stringify(manifest),
      scopes: JSON.stringify(manifest.scopes),
      admission: JSON.stringify(admission),
      data_classes: delimited(admission.data_classes),
      risk_score: admission.risk_score,
    };
  }

  /**
   * Appends the change to the audit trail, then applies it if the app is still as it was read. A lost
   * race is recorded as an error event and answered with APP_STATE.
   */
  async function change(
    app: App | undefined,
    step: { action: string; to: AppStatus; reason: string; by: Actor; requestId?: string; appId?: string },
    apply: (trx: CatalogDb, at: string) => Promise<boolean>,
  ): Promise<void> {
    const appId = app?.id ?? step.appId ?? '';
    const from = app?.status ?? 'none';
    const at = now().toISOString();
    const event = changeEvent(appId, step.action, from, step.to, step.reason, step.by, at, step.requestId);
    await deps.audit.append(event);
    const applied = await db.transaction().execute(async (trx) => {
      if (!(await apply(trx, at))) return false;
      await appendHistory(trx, appId, {
        at,
        action: step.action,
        from,
        to: step.to,
        actor: step.by.id,
        reason: step.reason,
      });
      return true;
    });
    if (!applied) {
      await deps.audit.append({
        ...event,
        timestamp: now().toISOString(),
        outcome: 'error',
        reason: `not applied: ${appId} changed meanwhile`,
      });
      throw new CatalogError(
        'APP_STATE',
        `${appId} changed while this was being done; look again and retry`,
        {
          app_id: appId,
        },
      );
    }
  }

  /** An update that applies only to the row as it was read (its state and its last change). */
  function updateIfUnchanged(trx: CatalogDb, app: App, values: Partial<CatalogTables['apps']>, at: string) {
    return trx
      .updateTable('apps')
      .set({ ...values, updated_at: at })
      .where('id', '=', app.id)
      .where('updated_at', '=', app.updatedAt)
      .executeTakeFirst()
      .then((result) => Number(result.numUpdatedRows) === 1);
  }

  function requireReason(reason: string): string {
    const text = typeof reason === 'string' ? reason.trim() : '';
    if (text === '') throw new InputError('say why: a reason is required', { parameter: 'reason' });
    return text;
  }

  function summary(admission: AdmissionRecord): string {
    const ids = admission.rules.filter((r) => r.effect === admission.decision).map((r) => r.id);
    return `${admission.decision} by admission policy ${admission.policy_version} (${ids.join(', ') || 'no rule'})`;
  }

  function assertOwnerOrAdmin(app: App, input: { by: Actor; admin: boolean }): void {
    if (input.admin || normaliseEmail(input.by.id) === app.owner) return;
    throw new CatalogError(
      'APP_NOT_OWNER',
      `${app.id} belongs to ${app.owner}; only its owner or an admin may change it`,
      {
        app_id: app.id,
      },
    );
  }

  async function revoke(appId: string, reason: string, by: Actor): Promise<void> {
    await deps.revokeTokens({ appId }, { reason, actor: by.id });
  }

  return {
    catalog,

    async register(input) {
      const manifest = parse(input.manifest);
      manifest.owner = normaliseEmail(manifest.owner);
      if (!input.admin && manifest.owner !== normaliseEmail(input.by.id)) {
        throw new CatalogError(
          'APP_NOT_OWNER',
          `a maker registers apps they own: set owner to ${input.by.id}, or ask an admin to register it for ${manifest.owner}`,
        );
      }
      if (await catalog.findApp(manifest.name)) {
        throw new CatalogError(
          'APP_EXISTS',
          `an app named ${manifest.name} exists (names are never reused); change its plan with app update, or pick another name`,
          { app_id: manifest.name },
        );
      }
      const admission = await judge(manifest, {
        approved: false,
        scan: input.bundle?.summary,
        by: input.by,
        requestId: input.requestId,
      });
      const status = stateAfter(admission.decision);
      const reason = summary(admission);
      await change(
        undefined,
        {
          action: 'register',
          to: status,
          reason,
          by: input.by,
          requestId: input.requestId,
          appId: manifest.name,
        },
        async (trx, at) => {
          const result = await trx
            .insertInto('apps')
            .values({
              id: manifest.name,
              client_id: manifest.name,
              name: manifest.name,
              owner: manifest.owner,
              status,
              created_at: at,
              updated_at: at,
              requested_by: input.by.id.toLowerCase(),
              review_reason: reason,
              scan: input.bundle ? JSON.stringify(input.bundle.summary) : null,
              bundle_digest: input.bundle?.digest ?? null,
              ...planColumns(manifest, admission),
              ...(status === 'approved'
                ? approval(new Date(at), 'policy', manifest, input.bundle?.digest)
                : {}),
            })
            .onConflict((c) => c.doNothing())
            .executeTakeFirst();
          return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
        },
      );
      return { app: await mustFind(manifest.name), admission };
    },

    async update(appId, input) {
      const app = await mustFind(appId);
      assertOwnerOrAdmin(app, input);
      assertStep(app, 'update');
      const manifest = parse(input.manifest);
      manifest.owner = normaliseEmail(manifest.owner);
      if (manifest.name !== app.name || manifest.owner !== app.owner) {
        throw new InputError(
          `the plan of ${app.id} must keep its name and owner (${app.name}, ${app.owner}); transfer changes an owner`,
        );
      }
      const scan = input.bundle?.summary ?? app.scan;
      const digest = input.bundle?.digest ?? app.bundleDigest;
      const admission = await judge(manifest, {
        approved: false,
        scan,
        by: input.by,
        requestId: input.requestId,
      });
      const base = { by: input.by, requestId: input.requestId };
      const scanColumn = input.bundle
        ? { scan: JSON.stringify(input.bundle.summary), bundle_digest: input.bundle.digest }
        : {};
      if (app.status !== 'approved') {
        const status = stateAfter(admission.decision);
        await change(app, { ...base, action: 'update', to: status, reason: summary(admission) }, (trx, at) =>
          updateIfUnchanged(
            trx,
            app,
            {
              status,
              review_reason: summary(admission),
              ...scanColumn,
              ...planColumns(manifest, admission),
              ...(status === 'approved' ? approval(new Date(at), 'policy', manifest, digest) : {}),
            },
            at,
          ),
        );
        return { app: await mustFind(appId), admission };
      }
      if (admission.decision === 'deny') {
        const ids = admission.rules.filter((r) => r.effect === 'deny').map((r) => r.id);
        throw new AccessDenied('POLICY_DENIED', `the admission policy denies this plan: ${ids.join(', ')}`, {
          rules: admission.rules,
          policy_version: admission.policy_version,
          // A refused bundle is not kept: the maker still sees what the scan found (counts only).
          ...(input.bundle && { scan: input.bundle.summary, bundle_digest: input.bundle.digest }),
        });
      }
      const held = {
        scopes: app.scopes,
        risk: app.riskScore,
        purpose: purposeInForce(app),
        residency: residencyOf(app.manifest),
      };
      const next = {
        scopes: manifest.scopes,
        risk: admission.risk_score,
        purpose: manifest.consent_purpose,
        residency: residencyOf(manifest),
      };
      // A bundle other than the approved one is never waved through on a narrower plan: only the policy's
      // own approval or a reviewer's puts it in force.
      const newBundle = digest !== app.approvedDigest && admission.decision !== 'approve';
      if (!newBundle && appliesAtOnce(admission.decision, held, next)) {
        const dropped = droppedScopes(app.scopes, manifest.scopes);
        const reason = `${summary(admission)}${dropped.length ? `; drops ${dropped.join(' ')}` : ''}`;
        await change(app, { ...base, action: 'update', to: 'approved', reason }, (trx, at) =>
          updateIfUnchanged(
            trx,
            app,
            {
              review_reason: reason,
              pending: null,
              ...scanColumn,
              ...planColumns(manifest, admission),
              ...approval(
                new Date(at),
                admission.decision === 'approve' ? 'policy' : input.by.id,
                manifest,
                digest,
              ),
            },
            at,
          ),
        );
        if (dropped.length > 0) await revoke(app.id, `plan narrowed: ${dropped.join(' ')}`, input.by);
        return { app: await mustFind(appId), admission, change: 'applied' };
      }
      const pending: PendingChange = {
        manifest,
        scopes: manifest.scopes,
        requested_by: input.by.id.toLowerCase(),
        requested_at: now().toISOString(),
        admission,
      };
      const purposeChange =
        held.purpose === next.purpose
          ? ''
          : `; consent purpose ${held.purpose ?? 'none'} -> ${next.purpose ?? 'none'}`;
      const residencyChange =
        held.residency === next.residency
          ? ''
          : `; residency ${held.residency ?? 'home'} -> ${next.residency ?? 'home'}`;
      const reason = `plan change waits for review (${summary(admission)})${purposeChange}${residencyChange}; the approved plan stays in force`;
      await change(app, { ...base, action: 'update', to: 'approved', reason }, (trx, at) =>
        updateIfUnchanged(trx, app, { pending: JSON.stringify(pending), ...scanColumn }, at),
      );
      return { app: await mustFind(appId), admission, change: 'pending' };
    },

    async submitBundle(appId, bundle, input) {
      const app = await mustFind(appId);
      return this.update(appId, { ...input, manifest: app.pending?.manifest ?? app.manifest, bundle });
    },

    async checkDeploy(appId, digest) {
      const app = await mustFind(appId);
      if (app.status !== 'approved' || app.approvedDigest === undefined || app.approvedDigest !== digest) {
        throw new CatalogError('BUNDLE_NOT_APPROVED', deployRefusal(app, digest), {
          app_id: app.id,
          digest,
          approved_digest: app.status === 'approved' ? (app.approvedDigest ?? null) : null,
        });
      }
      return app;
    },

    async approve(appId, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'approve');
      assertSeparateDuties(app, options.by.id);
      const pending = app.status === 'approved' ? app.pending : undefined;
      const manifest = parse(pending?.manifest ?? app.manifest);
      // The policy is asked again: a reviewer's approval answers the review rules, never a deny rule.
      const admission = await judge(manifest, {
        approved: true,
        scan: app.scan,
        by: options.by,
        requestId: options.requestId,
      });
      if (admission.decision === 'deny') {
        const ids = admission.rules.filter((r) => r.effect === 'deny').map((r) => r.id);
        throw new AccessDenied(
          'POLICY_DENIED',
          `the admission policy denies this plan, so it cannot be approved: ${ids.join(', ')}`,
          { rules: admission.rules, policy_version: admission.policy_version },
        );
      }
      const dropped = droppedScopes(app.scopes, manifest.scopes);
      const what = pending ? `plan change approved: ${reason}` : reason;
      await change(
        app,
        { action: 'approve', to: 'approved', reason: what, by: options.by, requestId: options.requestId },
        (trx, at) =>
          updateIfUnchanged(
            trx,
            app,
            {
              status: 'approved',
              review_reason: what,
              pending: null,
              ...planColumns(manifest, pending?.admission ?? app.admission ?? admission),
              ...approval(new Date(at), options.by.id.toLowerCase(), manifest, app.bundleDigest),
            },
            at,
          ),
      );
      if (dropped.length > 0) await revoke(app.id, `plan narrowed: ${dropped.join(' ')}`, options.by);
      return mustFind(appId);
    },

    async deny(appId, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'deny');
      const pending = app.status === 'approved' && app.pending !== undefined;
      const to: AppStatus = pending ? 'approved' : 'draft';
      const what = pending ? `plan change denied, the approved plan stays: ${reason}` : reason;
      await change(
        app,
        { action: 'deny', to, reason: what, by: options.by, requestId: options.requestId },
        (trx, at) =>
          updateIfUnchanged(
            trx,
            app,
            pending ? { pending: null, review_reason: what } : { status: to, review_reason: what },
            at,
          ),
      );
      return mustFind(appId);
    },

    async suspendApp(appId, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'suspend');
      if (app.status !== 'suspended') {
        await change(
          app,
          { action: 'suspend', to: 'suspended', reason, by: options.by, requestId: options.requestId },
          (trx, at) => updateIfUnchanged(trx, app, { status: 'suspended', review_reason: reason }, at),
        );
      }
      await revoke(app.id, `app suspended: ${reason}`, options.by);
      return mustFind(appId);
    },

    async restoreApp(appId, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'restore');
      const history = await catalog.history(app.id);
      const from = history.findLast((entry) => entry.action === 'suspend')?.from_state;
      const at = now().toISOString();
      const lapsed =
        app.approvedAt === undefined || (app.approvedUntil !== undefined && app.approvedUntil <= at);
      const to = restoreTarget(from, lapsed);
      if (to === 'approved') assertSeparateDuties(app, options.by.id);
      await change(
        app,
        { action: 'restore', to, reason, by: options.by, requestId: options.requestId },
        (trx, when) => updateIfUnchanged(trx, app, { status: to, review_reason: reason }, when),
      );
      return mustFind(appId);
    },

    async retire(appId, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'retire');
      await change(
        app,
        { action: 'retire', to: 'retired', reason, by: options.by, requestId: options.requestId },
        (trx, at) =>
          updateIfUnchanged(trx, app, { status: 'retired', review_reason: reason, pending: null }, at),
      );
      await revoke(app.id, `app retired: ${reason}`, options.by);
      return mustFind(appId);
    },

    async transfer(appId, newOwner, options) {
      const app = await mustFind(appId);
      const reason = requireReason(options.reason);
      assertStep(app, 'transfer');
      const owner = normaliseEmail(newOwner);
      if (!/^[^\s@]+@[^\s@]+$/.test(owner)) throw new InputError('the new owner must be an email address');
      const manifest = { ...app.manifest, owner };
      const what = `owner ${app.owner} -> ${owner}: ${reason}`;
      await change(
        app,
        { action: 'transfer', to: app.status, reason: what, by: options.by, requestId: options.requestId },
        (trx, at) => updateIfUnchanged(trx, app, { owner, manifest: JSON.stringify(manifest) }, at),
      );
      return mustFind(appId);
    },

    async expireApprovals() {
      const at = now().toISOString();
      const lapsed = await db
        .selectFrom('apps')
        .selectAll()
        .where('status', '=', 'approved')
        .where('approved_until', '<=', at)
        .execute();
      const expired: App[] = [];
      for (const row of lapsed) {
        const reason = `the approval lapsed on ${row.approved_until}; a reviewer must approve it again`;
        // Claimed first, recorded after: the catalog already reads a lapsed approval as in review, so
        // this only records the change, and only the node whose update wins records it.
        const claimed = await db
          .updateTable('apps')
          .set({ status: 'in_review', review_reason: reason, updated_at: at })
          .where('id', '=', row.id)
          .where('status', '=', 'approved')
          .where('updated_at', '=', row.updated_at)
          .executeTakeFirst();
        if (Number(claimed.numUpdatedRows) !== 1) continue;
        const system = { id: 'system', role: 'system' };
        await deps.audit.append(changeEvent(row.id, 'expire', 'approved', 'in_review', reason, system, at));
        await appendHistory(db, row.id, {
          at,
          action: 'expire',
          from: 'approved',
          to: 'in_review',
          actor: system.id,
          reason,
        });
        expired.push(await mustFind(row.id));
      }
      return expired;
    },
  };
}

/** The audit event of one lifecycle change: who, which app, from which state to which, and why. */
function changeEvent(
  appId: string,
  action: string,
  from: string,
  to: string,
  reason: string,
  by: Actor,
  at: string,
  requestId?: string,
): AuditEvent {
  return {
    timestamp: at,
    actor_id: by.id,
    actor_role: by.role,
    app_id: appId,
    action: `app.${action}`,
    resource_type: 'app',
    resource_id: appId,
    scope: '',
    request_id: requestId ?? `app-${randomBytes(9).toString('base64url')}`,
    trace_id: '',
    outcome: 'allow',
    reason: `${from} -> ${to}: ${reason}`.slice(0, maxReason),
  };
}

async function appendHistory(
  db: CatalogDb,
  appId: string,
  entry: { at: string; action: string; from: string; to: string; actor: string; reason: string },
): Promise<void> {
  const last = await db
    .selectFrom('app_history')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('app_id', '=', appId)
    .executeTakeFirst();
  await db
    .insertInto('app_history')
    .values({
      app_id: appId,
      seq: Number(last?.seq ?? 0) + 1,
      at: entry.at,
      action: entry.action,
      from_state: entry.from,
      to_state: entry.to,
      actor: entry.actor,
      reason: entry.reason.slice(0, maxReason),
    })
    .execute();
}

/**
 * suspendApp and restoreApp with the actor as a plain name, as detection's containment pulls them:
 * an email is an admin, anything else (`detect`) the system.
 */
export function containmentLevers(lifecycle: Lifecycle): {
  suspendApp(appId: string, options: { by: string; reason: string }): Promise<void>;
  restoreApp(appId: string, options: { by: string; reason: string }): Promise<void>;
} {
  const actor = (by: string): Actor => ({ id: by, role: by.includes('@') ? 'admin' : 'system' });
  return {
    async suspendApp(appId, options) {
      await lifecycle.suspendApp(appId, { by: actor(options.by), reason: options.reason });
    },
    async restoreApp(appId, options) {
      await lifecycle.restoreApp(appId, { by: actor(options.by), reason: options.reason });
    },
  };
}

/** Why a deploy is refused, in words that say what to do. */
function deployRefusal(app: App, digest: string): string {
  if (app.status !== 'approved') return `${app.id} is ${app.status}; only an approved app may be deployed`;
  if (app.approvedDigest === undefined) {
    return `no bundle of ${app.id} was scanned and approved; upload it (gatehouse app update ${app.id} --bundle PATH) and have it approved`;
  }
  return `${digest} is not the bundle approved for ${app.id}; deploy the approved bundle, or upload this one for review`;
}
