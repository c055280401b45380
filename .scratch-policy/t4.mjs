import * as c from '@cedar-policy/cedar-wasm/nodejs';
const pol = { 'a': `forbid (principal, action, resource) when { context.record_count > 1000 };`, 'b': 'permit(principal,action,resource);' };
const unk = (n) => ({__extn: {fn: 'unknown', arg: n}});
for (const ctx of [{record_count: 10, hour: unk('h')}, {record_count: 10, hour: 3}]) {
const r = c.isAuthorizedPartial({principal: {type:'U', id:'a'}, action:{type:'Action', id:'read'}, resource: {type:'R', id:'x'}, context: ctx, policies:{staticPolicies: pol}, entities:[]});
console.log(JSON.stringify(r.response?.residuals?.a?.conditions ?? r));
}
