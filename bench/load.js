// Load and process measurements for the scale-out bench: wrk when installed (autocannon otherwise, which
// costs a core of its own), and a server process's CPU time and memory read from /proc (Linux).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

const run = promisify(execFile);

export async function hasWrk() {
  try {
    await run('wrk', ['--version']).catch((error) => {
      // wrk prints its version and exits 1.
      if (!/wrk/.test(String(error.stdout))) throw error;
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Drives `connections` over every URL at once (spread evenly) for `seconds`: requests done, p50 and
 * p99 in ms (of the first URL's loader when there are several), non-2xx answers and socket errors.
 */
export async function drive({ loader, urls, headers, connections, seconds }) {
  if (loader === 'wrk') {
    const each = Math.max(1, Math.floor(connections / urls.length));
    const reports = await Promise.all(
      urls.map((url) =>
        run('wrk', [
          '-t1',
          `-c${each}`,
          `-d${seconds}s`,
          '--latency',
          // A slow answer counts in the latency, not as an error (wrk's default gives up after 2 s).
          '--timeout',
          '10s',
          ...Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
          url,
        ]).then(({ stdout }) => parseWrk(stdout)),
      ),
    );
    return {
      requests: reports.reduce((sum, r) => sum + r.requests, 0),
      p50: Math.max(...reports.map((r) => r.p50)),
      p99: Math.max(...reports.map((r) => r.p99)),
      non2xx: reports.reduce((sum, r) => sum + r.non2xx, 0),
    };
  }
  const result = await autocannon({ url: urls, connections, duration: seconds, headers });
  return {
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

/** wrk's text report: `N requests in`, the latency distribution, non-2xx answers and socket errors. */
export function parseWrk(text) {
  const ms = (value, unit) => Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60000 }[unit];
  const percentile = (p) => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return match ? Math.round(ms(match[1], match[2]) * 100) / 100 : NaN;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    p50: percentile(50),
    p99: percentile(99),
    non2xx:
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0) +
      (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
  };
}

/** CPU time (user + system, ms) a process has used so far, all its threads included. */
export function cpuMs(pid) {
  // Fields after the command name; utime and stime are the 12th and 13th, in clock ticks (100 Hz).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process's resident memory now and its peak so far (the kernel's high-water mark), in MB. */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

/** Least-squares slope of `points` ([seconds, value]) per minute. */
export function slopePerMinute(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : (sxy / sxx) * 60;
}
