import * as c from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync, readdirSync } from 'node:fs';
const schema = readFileSync('policies/gatehouse.cedarschema', 'utf8');
console.log(JSON.stringify(c.checkParseSchema(schema)));
for (const d of ['admission', 'runtime']) for (const f of readdirSync('policies/' + d)) {
  const t = readFileSync(`policies/${d}/${f}`, 'utf8');
  const r = c.validate({ schema, policies: { staticPolicies: t }, validationSettings: { mode: 'strict' } });
  console.log(f, JSON.stringify(r).slice(0, 600));
}
