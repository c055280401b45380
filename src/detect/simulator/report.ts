/**
 * The report people look at: one self-contained HTML file (Chart.js inlined, no network) with requests,
 * denials and records read per app over the simulated span, detections and containments on the same
 * axis, and each attack's start, detection and containment; the JSON summary beside it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RunResult } from './run.js';
import type { Scenario } from './scenario.js';
import type { SimulationSummary } from './summary.js';

const buckets = 24;

/** Per app and time bucket: requests, denials, records read; and the incidents' marks on the same axis. */
export function reportSeries(scenario: Scenario, run: RunResult) {
  const width = scenario.durationMs / buckets;
  const apps = [...new Set(run.requests.map((r) => r.app))].sort();
  const zero = () => new Array<number>(buckets).fill(0);
  const series = Object.fromEntries(
    apps.map((app) => [app, { requests: zero(), denials: zero(), records: zero() }]),
  );
  const bucketOfWall = (t: number) =>
    Math.min(buckets - 1, Math.max(0, Math.floor((t * run.timeScale) / width)));
  for (const r of run.requests) {
    const s = series[r.app];
    if (!s) continue;
    const b = bucketOfWall(r.t);
    s.requests[b] += 1;
    if (r.status !== 200) s.denials[b] += 1;
    s.records[b] += r.records;
  }
  const marks = run.incidents.flatMap((i) =>
    i.timeline
      .filter((t) => t.kind === 'detected' || t.kind === 'contained')
      .map((t) => ({
        kind: t.kind,
        bucket: bucketOfWall(Date.parse(t.at) - run.startedAt),
        label: `${i.rule} ${i.actor} ${i.app_id}: ${t.kind === 'contained' ? t.detail : i.summary}`,
      })),
  );
  const starts = scenario.attacks
    .filter((a) => a.simulated)
    .map((a) => ({
      kind: 'attack start',
      bucket: Math.min(buckets - 1, Math.floor(a.at / width)),
      label: a.kind,
    }));
  const labels = Array.from({ length: buckets }, (_, b) => {
    const minutes = Math.round((b * width) / 60_000);
    return `+${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}`;
  });
  return { labels, apps, series, marks: [...starts, ...marks] };
}

/** Chart.js's UMD build, to inline: the report opens offline and from a file. */
function chartJs(): string {
  const require = createRequire(import.meta.url);
  // The package exports only its module builds; the UMD one sits beside them.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** JSON safe inside a <script> element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

export function renderReport(scenario: Scenario, run: RunResult, summary: SimulationSummary): string {
  const data = reportSeries(scenario, run);
  const ms = (value: number | null) => (value === null ? '—' : `${value} ms`);
  const rows = summary.attacks
    .map(
      (a) =>
        `<tr><td>${escapeHtml(a.kind)}</td><td>${a.simulated ? (a.detected ? 'yes' : '<b>no</b>') : 'not simulated'}</td>` +
        `<td>${ms(a.detection_ms)}</td><td>${ms(a.containment_ms)}</td><td>${a.records_read}` +
        `${a.share_of_table === null ? '' : ` (${(a.share_of_table * 100).toFixed(2)}%)`}</td>` +
        `<td>${escapeHtml(a.rules.join(', '))}</td><td>${escapeHtml(a.containment.join('; '))}</td>` +
        `<td>${escapeHtml(a.note ?? a.description)}</td></tr>`,
    )
    .join('\n');
  const o = summary.ordinary;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gatehouse — simulated day (seed ${summary.seed})</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.charts{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}canvas{max-height:320px}</style>
</head><body>
<h1>Simulated day</h1>
<p>Seed ${summary.seed}: ${summary.users} users, ${summary.simulated_minutes} simulated minutes at ${summary.speed}× on ${summary.clock === 'simulated' ? 'the simulated clock the server ran on' : 'real time'} (${summary.wall_seconds} s of wall time), ${summary.requests} requests.</p>
<h2>Ordinary traffic</h2>
<p>${o.requests} requests, ${o.refused} refused (${(o.refused_share * 100).toFixed(3)}%); false containments: <b>${o.false_containments}</b>${o.contained_users.length + o.contained_apps.length > 0 ? ` (${escapeHtml([...o.contained_users, ...o.contained_apps].join(', '))})` : ''}. ${summary.clock === 'simulated' ? 'Detection to containment is measured in real time by <code>npm run bench</code> (the simulated clock stands still while detection runs).' : `Detection to containment: p50 ${ms(summary.detection_to_containment_ms.p50)}, p99 ${ms(summary.detection_to_containment_ms.p99)} over ${summary.detection_to_containment_ms.n} incidents.`}</p>
<h2>Attacks</h2>
<table><tr><th>attack</th><th>detected</th><th>detection</th><th>containment</th><th>records read</th><th>rules</th><th>containment</th><th>what</th></tr>
${rows}</table>
<div class="charts">
<div><h3>Requests per app</h3><canvas id="requests"></canvas></div>
<div><h3>Denials per app</h3><canvas id="denials"></canvas></div>
<div><h3>Records read per app</h3><canvas id="records"></canvas></div>
<div><h3>Attacks, detections and containments</h3><canvas id="marks"></canvas></div>
</div>
<script>${chartJs()}</script>
<script>
const data = ${scriptJson(data)};
const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];
const stacked = (id, field) => new Chart(document.getElementById(id), {
  type: 'bar',
  data: { labels: data.labels, datasets: data.apps.map((app, i) => ({ label: app, data: data.series[app][field], backgroundColor: colours[i % colours.length] })) },
  options: { scales: { x: { stacked: true, title: { display: true, text: 'simulated time' } }, y: { stacked: true } } },
});
stacked('requests', 'requests');
stacked('denials', 'denials');
stacked('records', 'records');
const kinds = ['attack start', 'detected', 'contained'];
new Chart(document.getElementById('marks'), {
  type: 'scatter',
  data: { datasets: kinds.map((kind, i) => ({ label: kind, pointRadius: 6, backgroundColor: colours[(i + 3) % colours.length],
    data: data.marks.filter((m) => m.kind === kind).map((m) => ({ x: m.bucket, y: i + 1, label: m.label })) })) },
  options: {
    scales: { x: { type: 'linear', min: 0, max: data.labels.length - 1, ticks: { callback: (v) => data.labels[v] ?? '' }, title: { display: true, text: 'simulated time' } },
      y: { min: 0, max: 4, ticks: { callback: (v) => kinds[v - 1] ?? '' } } },
    plugins: { tooltip: { callbacks: { label: (c) => c.raw.label } } },
  },
});
</script>
<h2>Summary (JSON)</h2><pre>${escapeHtml(JSON.stringify(summary, null, 2))}</pre>
</body></html>
`;
}
