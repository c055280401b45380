import { openBundle, skippedFolderOf } from './bundle.js';
import { findCrmHosts } from './crm-hosts.js';
import { checkPackageJson } from './dependencies.js';
import { entryName, printable } from './entry-name.js';
import { fileKind, lockfileNames, looksBinary } from './files.js';
import { lineIndex } from './lines.js';
import { findSecrets } from './secrets.js';
import {
  defaultScanLimits,
  severities,
  type ScanFinding,
  type ScanLimits,
  type ScanOptions,
  type ScanReport,
  type ScanSummary,
  type Severity,
} from './types.js';

/**
 * Scans a microapp bundle (a folder, a .zip or a .tgz) before approval: embedded secrets, calls that
 * bypass the gateway, unpinned dependencies, and bundle-level tricks (zip slip names, links). Throws
 * BundleInvalid (BUNDLE_INVALID) when the bundle cannot be read as a whole or passes a limit.
 */
export async function scanBundle(path: string, options: ScanOptions = {}): Promise<ScanReport> {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
  const limits = checkLimits({ ...defaultScanLimits, ...options.limits });
  const { kind, bundle, skipped: skippedFolders } = await openBundle(path, limits);
  const findings: ScanFinding[] = [];
  const skipped = new Set(skippedFolders);
  const paths = new Set<string>();
  const manifests: string[] = [];
  let files = 0;
  let bytes = 0;
  let entries = 0;

  try {
    for await (const entry of bundle.entries()) {
      entries++;
      options.onProgress?.({ entries, done: entry.consumed, total: bundle.total });
      const { path: name, escapes } = entryName(entry.name);
      if (escapes) {
        findings.push({
          rule: 'bundle.path_traversal',
          severity: 'high',
          file: printable(entry.name),
          line: 0,
          message:
            'the entry name points outside the bundle ("../", an absolute path or a drive letter: zip slip); a bundle holds relative paths only',
        });
      }
      if (entry.type === 'directory') continue;
      const folder = skippedFolderOf(name);
      if (folder) {
        skipped.add(folder);
        continue;
      }
      if (entry.type !== 'file') {
        findings.push(
          unscanned(
            name,
            entry.type === 'other'
              ? 'a device, pipe or other special file is not read'
              : 'a link is not followed, so its target was not scanned (and could point outside the bundle on extraction): ship the file itself',
            'bundle.link',
          ),
        );
        continue;
      }
      paths.add(name);
      const kind = fileKind(name);
      if (entry.unreadable) {
        findings.push(
          unscanned(name, `the file could not be read (${entry.unreadable}), so it was not scanned`),
        );
        continue;
      }
      if (kind === 'archive') {
        findings.push(unscanned(name, 'a nested archive is not opened, so its contents were not scanned'));
        continue;
      }
      if (entry.size > limits.maxFileBytes) {
        findings.push(
          unscanned(name, `the file is larger than ${limits.maxFileBytes} bytes, so it was not scanned`),
        );
        continue;
      }
      if (kind === 'binary') continue;
      const data = await entry.read();
      if (looksBinary(data)) continue;
      files++;
      bytes += data.length;
      const text = data.toString('utf8');
      const lines = lineIndex(text);
      findings.push(...findSecrets(text, name, kind, lines), ...findCrmHosts(text, name, kind, lines));
      if (baseName(name) === 'package.json') {
        const check = checkPackageJson(text, name, lines);
        findings.push(...check.findings);
        if (check.hasDependencies) manifests.push(name);
      }
    }
  } finally {
    await bundle.close();
  }
  options.onProgress?.({ entries, done: bundle.total, total: bundle.total });

  for (const manifest of manifests) {
    if (!lockfileCovers(manifest, paths)) {
      findings.push({
        rule: 'deps.lockfile_missing',
        severity: 'medium',
        file: manifest,
        line: 0,
        message:
          'package.json lists dependencies but no lockfile (package-lock.json, yarn.lock, pnpm-lock.yaml) ships beside it: commit the lockfile so installs are reproducible',
      });
    }
  }

  const sorted = findings.sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
      a.line - b.line ||
      (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
  const counts = { critical: 0, high: 0, medium: 0, low: 0 };
  for (const f of sorted) counts[f.severity]++;
  return { target: path, kind, files, bytes, skipped: [...skipped].sort(), findings: sorted, counts };
}

/** What the admission policies see of a report: counts by severity and by what the app would do. */
export function scanSummary(report: ScanReport): ScanSummary {
  const { findings, counts } = report;
  return {
    ...counts,
    bypass: findings.some((f) => f.rule === 'crm.direct_call' || f.rule === 'crm.sdk_dependency'),
    unpinned: findings.filter((f) => f.rule === 'deps.unpinned' || f.rule === 'deps.remote_source').length,
    lockfile_missing: findings.some((f) => f.rule === 'deps.lockfile_missing'),
    unscanned: findings.filter((f) => f.rule === 'bundle.unscanned' || f.rule === 'bundle.link').length,
  };
}

function unscanned(file: string, message: string, rule = 'bundle.unscanned'): ScanFinding {
  return { rule, severity: 'medium', file, line: 0, message };
}

/** A lockfile in the manifest's folder or above it (a workspace root's lockfile covers its packages). */
function lockfileCovers(manifest: string, paths: ReadonlySet<string>): boolean {
  const segments = manifest.split('/').slice(0, -1);
  for (let depth = segments.length; depth >= 0; depth--) {
    const dir = segments.slice(0, depth).join('/');
    for (const lockfile of lockfileNames) {
      if (paths.has(dir ? `${dir}/${lockfile}` : lockfile)) return true;
    }
  }
  return false;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function rank(severity: Severity): number {
  return severities.indexOf(severity);
}

function checkLimits(limits: ScanLimits): ScanLimits {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new TypeError(`scan limit ${key} must be a positive integer`);
  }
  return limits;
}
