import * as c from '@cedar-policy/cedar-wasm/nodejs';
console.log(c.getCedarVersion(), c.getCedarLangVersion());
const schema = `namespace Gatehouse {
  entity Role;
  entity User in [Role] { email: String, role: String, territory?: String };
  entity Contact { territory: String, owner: String, data_class: String };
  action read appliesTo { principal: [User], resource: [Contact], context: { app: String, record_count: Long, ip: ipaddr } };
}`;
const pol = `@id("runtime.x")
@reason("r")
permit (principal, action == Gatehouse::Action::"read", resource)
when { (principal in Gatehouse::Role::"sales_rep" || principal in Gatehouse::Role::"sales_manager") && principal has territory && resource.territory == principal.territory };
@id("bad")
permit (principal, action, resource) when { resource.nope == 1 };
`;
console.log(JSON.stringify(c.checkParsePolicySet({staticPolicies: 'permit (principal, action, resource) when { 1 + };'}), null, 1));
console.log(JSON.stringify(c.validate({schema, policies:{staticPolicies: pol}, validationSettings:{mode:'strict'}}), null, 1));
console.log(JSON.stringify(c.policySetTextToParts(pol), null, 1));
