/** Counters read from Gatehouse's Prometheus text: one sample per label set. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus text exposition (labels as written, values as numbers). */
export function samplesOf(text: string, metric: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const match = /^[a-z_]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[1] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1]!] = pair[2]!;
    samples.push({ labels, value: Number(match[2]) });
  }
  return samples;
}

/** Requests and denials per app from `gatehouse_decisions_total{outcome,app}`. */
export function decisionsPerApp(text: string): Record<string, { requests: number; denials: number }> {
  const perApp: Record<string, { requests: number; denials: number }> = {};
  for (const { labels, value } of samplesOf(text, 'gatehouse_decisions_total')) {
    const app = labels.app || '(none)';
    const totals = (perApp[app] ??= { requests: 0, denials: 0 });
    totals.requests += value;
    if (labels.outcome === 'deny') totals.denials += value;
  }
  return perApp;
}

/** Data classes that make a read sensitive (everything but internal and public). */
const plainClasses: ReadonlySet<string> = new Set(['internal', 'public']);

/**
 * Records read per app, in all and of sensitive data, from `gatehouse_records_read_total{app,data_class}`
 * (each read counted once, under the most sensitive class it touched).
 */
export function recordsReadPerApp(text: string): Record<string, { records: number; sensitive: number }> {
  const perApp: Record<string, { records: number; sensitive: number }> = {};
  for (const { labels, value } of samplesOf(text, 'gatehouse_records_read_total')) {
    const totals = (perApp[labels.app || '(none)'] ??= { records: 0, sensitive: 0 });
    totals.records += value;
    if (!plainClasses.has(labels.data_class ?? '')) totals.sensitive += value;
  }
  return perApp;
}
/** The apps with the most sensitive records read, most first. */
export function topSensitiveApps(
  perApp: Record<string, { records: number; sensitive: number }>,
  count = 5,
): [string, number][] {
  return Object.entries(perApp)
    .map(([app, totals]) => [app, totals.sensitive] as [string, number])
    .filter(([, sensitive]) => sensitive > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, count);
}
