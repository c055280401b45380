// The measuring side of a bench server process: the parent asks over IPC for the CPU time used between
// `start` and `stop` and the process's peak RSS (this server's alone), and `exit`
// ends the process normally, so that `node --cpu-prof` writes its profile. `start` and `stop` answer
// the time on the clock CPU profiles use, so a profile can be cut to the measured window.
export function answerMeasurements(close = async () => {}) {
  let cpu;
  process.on('message', async (message) => {
    if (message === 'start') {
      cpu = process.cpuUsage();
      process.send({ atMicros: monotonicMicros() });
    } else if (message === 'stop') {
      const used = process.cpuUsage(cpu);
      process.send({
        cpuMs: (used.user + used.system) / 1000,
        // The process's peak so far (its kernel counter): no sampler stealing time from the server.
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
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
