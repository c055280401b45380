import { GatehouseError } from '../errors/index.js';

/**
 * A bundle that cannot be scanned as a whole: not a folder, zip or gzipped tar, corrupt, or past a
 * limit that a real microapp never reaches (a zip bomb, overlapping zip entries, too many files). The
 * scan fails closed: no report, so nothing downstream can mistake a half-read bundle for a clean one.
 */
export class BundleInvalid extends GatehouseError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BUNDLE_INVALID', message, options);
  }
}
