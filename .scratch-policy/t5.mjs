import * as c from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync } from 'node:fs';
const pol = { 'x': readFileSync('policies/runtime/export.cedar','utf8').split('@id("runtime.bulk-export-limit")')[1].split('@id')[0].replace(/@reason\(".*"\)/, '') };
console.log(pol.x);
const unk = (n) => ({__extn: {fn: 'unknown', arg: n}});
const ctx = {app: 'a', scopes: [], fields: unk('context.fields'), record_count: 10, hour: unk('context.hour'), ip: {__extn:{fn:'ip',arg:'127.0.0.1'}}};
const r = c.isAuthorizedPartial({principal: {type:'Gatehouse::User', id:'a'}, action:{type:'Gatehouse::Action', id:'export'}, resource: {type:'Gatehouse::Contact', id:'x'}, context: ctx, policies:{staticPolicies: pol}, entities:[]});
console.log(JSON.stringify(r));
