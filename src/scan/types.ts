/** The vocabulary of bundle scanning: findings, the report and the summary admission policies read. */

export type Severity = 'critical' | 'high' | 'medium' | 'low';

export const severities: readonly Severity[] = Object.freeze(['critical', 'high', 'medium', 'low']);

/**
 * One problem in a bundle. It never carries the matched text: a finding is printed, stored and sent to
 * CI logs, and a secret must not travel with it.
 */
export interface ScanFinding {
  /** Stable rule id, e.g. `secret.private_key`, `crm.direct_call`, `deps.unpinned`. */
  readonly rule: string;
  readonly severity: Severity;
  /** Path inside the bundle, `/`-separated; names that are unsafe to print are escaped. */
  readonly file: string;
  /** 1-based; 0 when the finding is about the file as a whole. */
  readonly line: number;
  readonly message: string;
  /**
   * `sha256:` and the first 12 hex digits of the SHA-256 of a high-entropy secret, so the same key can
   * be recognised across scans and after rotation. Absent for guessable values such as passwords.
   */
  readonly fingerprint?: string;
}

export type BundleKind = 'folder' | 'zip' | 'tgz' | 'tar';

export interface ScanReport {
  /** The path as given. */
  readonly target: string;
  readonly kind: BundleKind;
  /** Files whose contents were scanned. */
  readonly files: number;
  /** Bytes of file contents scanned. */
  readonly bytes: number;
  /** Folders left out on purpose: installed dependencies and version control (`web/node_modules`). */
  readonly skipped: readonly string[];
  /** Sorted by severity, then file and line. */
  readonly findings: readonly ScanFinding[];
  readonly counts: Readonly<Record<Severity, number>>;
}

/**
 * What the admission policies see of a scan (`context.scan` in policies/admission/scan.cedar). Counts
 * only: which file and which line is for people, the decision needs none of it.
 */
export interface ScanSummary {
  readonly critical: number;
  readonly high: number;
  readonly medium: number;
  readonly low: number;
  /** The app reaches a CRM directly (a CRM host in code or a CRM SDK as a dependency). */
  readonly bypass: boolean;
  /** Dependencies without an exact version (ranges, tags, URLs without a commit). */
  readonly unpinned: number;
  /** A package.json with dependencies has no lockfile beside it. */
  readonly lockfile_missing: boolean;
  /** Files that could not be scanned (too large, encrypted, nested archives, links). */
  readonly unscanned: number;
}

/** Bounds that keep a hostile bundle (zip bomb, tar of a million files) from costing unbounded work. */
export interface ScanLimits {
  /** Files larger than this are reported as unscanned rather than read. */
  readonly maxFileBytes: number;
  /** Sum of the uncompressed sizes of every entry; past it the bundle is refused. */
  readonly maxTotalBytes: number;
  readonly maxEntries: number;
  /** Uncompressed ÷ compressed size of one archive entry above which it is a bomb (for entries over 1 MiB). */
  readonly maxRatio: number;
}

export const defaultScanLimits: ScanLimits = Object.freeze({
  maxFileBytes: 16 * 1024 * 1024,
  maxTotalBytes: 512 * 1024 * 1024,
  maxEntries: 20_000,
  maxRatio: 200,
});

export interface ScanProgress {
  /** Entries seen so far. */
  readonly entries: number;
  /** Bytes of the bundle consumed so far (compressed bytes for an archive) and in all. */
  readonly done: number;
  readonly total: number;
}

export interface ScanOptions {
  readonly limits?: Partial<ScanLimits>;
  /** Called as the scan advances, at most once per entry. */
  readonly onProgress?: (progress: ScanProgress) => void;
}
