// Where a gateway request's time goes, from a CPU profile of this process taken while the bench loads
// it: each sample is charged to the pipeline stage of the innermost Gatehouse module on its stack
// (src/<module>/<file>), or, with none, to the library it is in. Asynchronous continuations lose their
// caller, so SQLite work resumed after an await shows as its own line.
import { Session } from 'node:inspector/promises';

/** Stage of a Gatehouse module file (`module/file`), most specific first. */
const stages = [
  [/^broker\//, 'authenticate: token (verified-token cache, revocation)'],
  [/^limits\/(rate|buckets|limits|config)$/, 'limit: rate buckets and quota'],
  [/^(policy\/|gateway\/(policy|authorize)$)/, 'authorize: Cedar, row filter, decision log'],
  [
    /^(gateway\/(stages|scopes|consent|dlp|filter|linked-aggregate)|dlp\/)/,
    'shape + protect: fields, consent, masks, DLP',
  ],
  [/^(crm|store)\//, 'fetch: CRM query'],
  [/^(limits\/(bulk-guard|distinct-window)|gateway\/guard)$/, 'guard: bulk export'],
  [/^audit\//, 'record: audit event, Merkle leaf, group commit'],
  [/^detect\//, 'detection: rules over appended events'],
  [/^(gateway|limits|server|errors)\//, 'pipeline glue: routes, breaker, metrics, errors'],
];

const libraries = [
  [/node_modules\/(kysely|better-sqlite3)\//, 'SQLite + Kysely, resumed after an await'],
  [/node_modules\/(pino|@pinojs)/, 'logging (pino child loggers)'],
  [
    /node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify)|node:(_http|net|internal\/(streams|stream_base|http))/,
    'HTTP: Fastify and Node (as in the bare route)',
  ],
  [/node_modules\/@cedar-policy|^wasm:/, 'authorize: Cedar, row filter, decision log'],
];

/** Starts sampling; the answer stops it and returns the profile. */
export async function startProfile(intervalMicros = 250) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalMicros });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return profile;
  };
}

/** Milliseconds of busy main-thread time by stage, largest first; idle and the profiler itself left out. */
export function stageBreakdown(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byStage = new Map();
  const memo = new Map();
  profile.samples.forEach((id, i) => {
    let stage = memo.get(id);
    if (stage === undefined) {
      stage = stageOf(id, nodes, parent);
      memo.set(id, stage);
    }
    if (stage !== null) byStage.set(stage, (byStage.get(stage) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...byStage].sort((a, b) => b[1] - a[1]);
}

function stageOf(id, nodes, parent) {
  let library;
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const { functionName, url } = nodes.get(cur).callFrame;
    if (url.startsWith('node:inspector') || (url === '' && functionName === 'dispatch')) return null;
    if (cur === id && url === '' && functionName === '(idle)') return null;
    const own = url.includes('/node_modules/') ? undefined : /\/dist\/([a-z-]+\/[a-z-]+)\.js$/.exec(url)?.[1];
    if (own)
      return (
        stages.find(([pattern]) => pattern.test(own))?.[1] ??
        'pipeline glue: routes, breaker, metrics, errors'
      );
    library ??= libraries.find(([pattern]) => pattern.test(url))?.[1];
  }
  const leaf = nodes.get(id).callFrame.functionName;
  if (leaf === '(garbage collector)') return 'garbage collection';
  return library ?? 'other (V8, Node internals)';
}

/**
 * The functions with the most self time (ms over the whole profile), idle, the profiler and GC's
 * bookkeeping nodes left out: what to attack first.
 */
export function hottestFunctions(profile, count) {
  const self = new Map();
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byFunction = new Map();
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    if (functionName === '(idle)' || functionName === '(program)' || url.startsWith('node:inspector'))
      continue;
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'}\t${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
  }
  return [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, ms]) => {
      const [name, where] = key.split('\t');
      return { name, where, ms };
    });
}

/** The profile's samples taken between two times (µs, the profile's clock); the others are dropped. */
export function profileWindow(profile, fromMicros, toMicros) {
  const samples = [];
  const timeDeltas = [];
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromMicros || at > toMicros) return;
    samples.push(id);
    timeDeltas.push(profile.timeDeltas[i] ?? 0);
  });
  return { ...profile, samples, timeDeltas };
}
