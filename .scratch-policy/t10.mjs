import * as c from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync } from 'node:fs';
const pol = readFileSync('policies/runtime/territory.cedar', 'utf8') + readFileSync('policies/runtime/export.cedar', 'utf8');
const parts = c.policySetTextToParts(pol).policies;
const rec = Object.fromEntries(parts.map((p, i) => [c.policyToJson(p).json.annotations.id, p]));
const unk = (n) => ({ __extn: { fn: 'unknown', arg: n } });
const t0 = performance.now();
const N = Number(process.argv[2] ?? 3000);
for (let i = 0; i < N; i++) {
  const user = { uid: { type: 'Gatehouse::User', id: 'u' + i }, attrs: { email: 'a', role: 'sales_rep', territory: 'EMEA' }, parents: [{ type: 'Gatehouse::Role', id: 'sales_rep' }] };
  const uid = { type: 'Gatehouse::Contact', id: '__row__' };
  const r = c.isAuthorizedPartial({ principal: user.uid, action: { type: 'Gatehouse::Action', id: 'read' }, resource: uid,
    context: { app: 'x', scopes: [], fields: unk('context.fields'), record_count: unk('context.record_count'), hour: unk('context.hour'), ip: unk('context.ip') },
    policies: { staticPolicies: { ...rec } }, entities: [user, { uid, attrs: { territory: unk('resource.territory'), owner: unk('resource.owner'), data_class: 'pii' }, parents: [] }] });
  if (r.type !== 'residuals') { console.log(JSON.stringify(r)); break; }
}
console.log('partial us/call', ((performance.now() - t0) * 1000 / N).toFixed(1));
