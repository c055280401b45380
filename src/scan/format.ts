import { severities, type ScanReport } from './types.js';

/** The report for people: one line per finding (`file:line`), then a one-line verdict. */
export function formatReport(report: ScanReport): string {
  const lines = report.findings.map((f) => {
    const where = f.line > 0 ? `${f.file}:${f.line}` : f.file;
    const print = f.fingerprint ? `  [${f.fingerprint}]` : '';
    return `${f.severity.toUpperCase().padEnd(8)}  ${f.rule.padEnd(26)}  ${where}\n          ${f.message}${print}`;
  });
  const scanned =
    `${report.files} file${report.files === 1 ? '' : 's'}, ${size(report.bytes)} scanned in ${report.target} (${report.kind})` +
    (report.skipped.length > 0 ? `; skipped ${report.skipped.join(', ')}` : '');
  const total = report.findings.length;
  const verdict =
    total === 0
      ? `no findings: ${scanned}`
      : `${total} finding${total === 1 ? '' : 's'} (${severities
          .filter((s) => report.counts[s] > 0)
          .map((s) => `${report.counts[s]} ${s}`)
          .join(', ')}): ${scanned}`;
  return [...lines, verdict].join('\n');
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
