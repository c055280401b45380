import * as c from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync } from 'node:fs';
const schema = readFileSync('policies/gatehouse.cedarschema', 'utf8');
const pol = readFileSync('policies/runtime/territory.cedar', 'utf8') + readFileSync('policies/runtime/export.cedar', 'utf8');
const parts = c.policySetTextToParts(pol).policies;
const rec = Object.fromEntries(parts.map((p, i) => [c.policyToJson(p).json.annotations.id, p]));
console.log(c.preparseSchema('s', schema), c.preparsePolicySet('p', { staticPolicies: rec }));
const mode = process.argv[2];
const t0 = performance.now();
for (let i = 0; i < 20000; i++) {
  const user = { uid: { type: 'Gatehouse::User', id: 'alice' }, attrs: { email: 'a', role: 'sales_rep', territory: 'EMEA' }, parents: [{ type: 'Gatehouse::Role', id: 'sales_rep' }] };
  const uid = { type: 'Gatehouse::Contact', id: 'c1' };
  const call = { principal: user.uid, action: { type: 'Gatehouse::Action', id: 'read' }, resource: uid,
    context: { app: 'x', scopes: [], fields: [], record_count: 1, hour: 3, ip: { __extn: { fn: 'ip', arg: '0.0.0.0' } } },
    preparsedPolicySetId: 'p', entities: [user, { uid, attrs: { territory: 'EMEA', owner: `o${i}`, data_class: 'pii' }, parents: [] }] };
  if (mode !== 'noschema') { call.preparsedSchemaName = 's'; call.validateRequest = true; }
  const r = c.statefulIsAuthorized(call);
  if (r.type !== 'success' || r.response.decision !== 'allow') { console.log(JSON.stringify(r)); break; }
  if (i % 5000 === 0) console.log(i);
}
console.log('us/call', ((performance.now() - t0) * 1000 / 20000).toFixed(1));
