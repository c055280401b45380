// The measuring side of a bench server process: the parent asks over IPC for the CPU time used and the
// peak RSS between `start` and `stop` (sampled here, so the figure is this server's alone), and `exit`
// ends the process normally, so that `node --cpu-prof` writes its profile. `start` and `stop` answer
// the time on the clock CPU profiles use, so a profile can be cut to the measured window.
export function answerMeasurements(close = async () => {}) {
  let cpu;
  let peakRss = 0;
  let sampler;
  process.on('message', async (message) => {
    if (message === 'start') {
      peakRss = process.memoryUsage.rss();
      sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
      cpu = process.cpuUsage();
      process.send({ atMicros: monotonicMicros() });
    } else if (message === 'stop') {
      const used = process.cpuUsage(cpu);
      clearInterval(sampler);
      process.send({
        cpuMs: (used.user + used.system) / 1000,
        peakRssMb: Math.round(peakRss / 1048576),
        atMicros: monotonicMicros(),
      });
    } else if (message === 'exit') {
      await close();
      process.exit(0);
    }
  });
}

/** The query both baselines answer, as the gateway's embedded CRM stores contacts. */
export const contactColumns = 'id, first_name, last_name, title, account_id, email, phone';

/** The monotonic clock V8's CPU profiles are stamped with, in µs: the measured window of a profile. */
function monotonicMicros() {
  return Number(process.hrtime.bigint() / 1000n);
}
