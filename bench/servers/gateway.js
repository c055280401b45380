// The whole gateway on the bench configuration (limits raised), demo mode, seeding a fresh data dir on
// its first start. argv: <data dir> <crm kind> <port> (the same port on every start: tokens name the
// issuer's URL). Sends its URL (and the CRM fake's, if any) when listening.
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../dist/config/index.js';
import { startGatehouse } from '../../dist/server/index.js';
import { answerMeasurements } from './measure.js';

const [dataDir, crm = 'embedded', port = '0'] = process.argv.slice(2);
const config = loadConfig({
  env: {},
  file: fileURLToPath(new URL('../gatehouse.bench.yaml', import.meta.url)),
  overrides: { dataDir, demo: true, logLevel: 'warn', 'server.port': Number(port), 'crm.kind': crm },
});
const gatehouse = await startGatehouse(config, {
  onSeedProgress: (done, total) => process.stderr.write(`\rseeding ${done}/${total}`),
});
answerMeasurements(() => gatehouse.close());
process.send({ url: gatehouse.url, crmVendorUrl: gatehouse.crmVendorUrl });
