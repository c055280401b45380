import * as c from '@cedar-policy/cedar-wasm/nodejs';
const schema = `namespace Gatehouse {
  entity Role;
  entity User in [Role] { email: String, role: String, territory?: String };
  entity Contact { territory: String, owner: String, data_class: String };
  action read appliesTo { principal: [User], resource: [Contact], context: { app: String, record_count: Long, ip: ipaddr } };
}`;
const pol = {
 'runtime.x': `permit (principal, action == Gatehouse::Action::"read", resource)
when { (principal in Gatehouse::Role::"sales_rep" || principal in Gatehouse::Role::"sales_manager") && principal has territory && resource.territory == principal.territory };`,
 'runtime.y': `forbid (principal, action, resource) when { context.record_count > 1000 };`,
 'runtime.z': `permit (principal, action, resource is Gatehouse::Contact) when { ["a","b"].contains(resource.owner) && resource.data_class == "pii" };`,
};
const user = { uid: {type:'Gatehouse::User', id:'alice'}, attrs: {email:'alice', role:'sales_rep', territory:'EMEA'}, parents: [{type:'Gatehouse::Role', id:'sales_rep'}]};
const unk = (n) => ({__extn: {fn: 'unknown', arg: n}});
const res = { uid: {type:'Gatehouse::Contact', id:'?'}, attrs: {territory: unk('territory'), owner: unk('owner'), data_class: 'pii'}, parents: []};
const ctx = {app:'call-notes', record_count: 5, ip: {__extn:{fn:'ip', arg:'127.0.0.1'}}};
let r = c.isAuthorizedPartial({principal: user.uid, action:{type:'Gatehouse::Action', id:'read'}, resource: res.uid, context: ctx, policies:{staticPolicies: pol}, entities:[user, res], schema});
console.log(JSON.stringify(r, null, 1));
r = c.isAuthorizedPartial({principal: user.uid, action:{type:'Gatehouse::Action', id:'read'}, resource: null, context: ctx, policies:{staticPolicies: pol}, entities:[user]});
console.log(JSON.stringify(r, null, 1));
