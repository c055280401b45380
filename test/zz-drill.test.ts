import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { testDatabaseEnvSync } from './support/database.js';
import { startDemo } from './support/demo.js';
const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
it('probe', async () => {
  const demo = await startDemo({ config: { 'detect.enabled': true } });
  const cli = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => execFile(process.execPath, [bin, ...args, '--data-dir', demo.dataDir], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testDatabaseEnvSync(demo.dataDir) } }, (e, stdout, stderr) => resolve({ code: e ? 1 : 0, stdout, stderr })));
  for (let i = 0; i < 2; i++) {
    const t = Date.now();
    const r = await cli('drill', 'mass-export', '--url', demo.url, '--json');
    console.log('RUN', i, r.code, Date.now() - t, r.stderr, r.stdout.slice(0, 1500));
  }
  await demo.stop();
}, 120000);
