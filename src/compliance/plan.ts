/**
 * What an app's plan says about copies of CRM data (manifest `keeps_copies`): none, in the governed app
 * store (`gatehouse`: its tokens may then hold `app:store`), or in the app itself (`app`: it must take
 * signed DSR webhooks at `dsr_webhook`).
 */
import type { CopyKeeper } from './dsr.js';

interface PlanLike {
  readonly id: string;
  readonly status: string;
  readonly manifest: Readonly<Record<string, unknown>>;
}

function keepsCopies(manifest: Readonly<Record<string, unknown>>): {
  where?: unknown;
  dsr_webhook?: unknown;
} {
  const value = manifest.keeps_copies;
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

export function keepsCopiesInGatehouse(manifest: Readonly<Record<string, unknown>>): boolean {
  return keepsCopies(manifest).where === 'gatehouse';
}

/** The apps (not retired) that keep copies themselves, and their DSR webhooks. */
export function copyKeepersOf(apps: readonly PlanLike[]): CopyKeeper[] {
  return apps
    .filter((app) => app.status !== 'retired')
    .flatMap((app) => {
      const copies = keepsCopies(app.manifest);
      return copies.where === 'app' && typeof copies.dsr_webhook === 'string'
        ? [{ appId: app.id, webhook: copies.dsr_webhook }]
        : [];
    });
}
