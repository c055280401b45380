import * as c from '@cedar-policy/cedar-wasm/nodejs';
const pol = { x: `forbid (principal, action, resource) when { context.record_count > 1000 };`, y: `forbid (principal, action, resource) unless { context.ip.isLoopback() };` };
const unk = (n) => ({__extn: {fn: 'unknown', arg: n}});
const ip = {__extn:{fn:'ip',arg:'127.0.0.1'}};
for (const ctx of [{record_count: 10, ip}, {record_count: 10, ip, hour: unk('h')}, {record_count: 10, hour: unk('h')}, {record_count: 10, fields: unk('f')}, {record_count: 10, fields: ['a'], hour: unk('h')}]) {
const r = c.isAuthorizedPartial({principal: {type:'U', id:'a'}, action:{type:'Action', id:'read'}, resource: {type:'R', id:'x'}, context: ctx, policies:{staticPolicies: pol}, entities:[]});
console.log(JSON.stringify(r.response?.residuals?.x?.conditions ?? r).slice(0,200));
}
