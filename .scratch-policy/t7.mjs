import * as c from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync, readdirSync } from 'node:fs';
const schema = readFileSync('policies/gatehouse.cedarschema', 'utf8');
let t = performance.now();
const tick = (l) => { const n = performance.now(); console.log(l, (n - t).toFixed(1), 'ms'); t = n; };
c.checkParseSchema(schema); tick('schema');
for (const d of ['admission', 'runtime']) for (const f of readdirSync('policies/' + d)) {
  const text = readFileSync(`policies/${d}/${f}`, 'utf8');
  c.checkParsePolicySet({ staticPolicies: text }); tick('parse ' + f);
  c.validate({ schema, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } }); tick('validate ' + f);
  const parts = c.policySetTextToParts(text); tick('parts');
  for (const p of parts.policies) c.policyToJson(p); tick('json');
}
