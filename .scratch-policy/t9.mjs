import * as c from '@cedar-policy/cedar-wasm/nodejs';
let t0 = performance.now();
for (let i = 0; i < 20000; i++) c.getCedarVersion();
console.log('version us', ((performance.now() - t0) * 1000 / 20000).toFixed(2));
c.preparsePolicySet('tiny', { staticPolicies: 'permit(principal, action, resource);' });
t0 = performance.now();
for (let i = 0; i < 20000; i++) c.statefulIsAuthorized({ principal: { type: 'U', id: 'a' }, action: { type: 'A', id: 'r' }, resource: { type: 'R', id: 'x' }, context: {}, preparsedPolicySetId: 'tiny', entities: [] });
console.log('tiny stateful us', ((performance.now() - t0) * 1000 / 20000).toFixed(2));
