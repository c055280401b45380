import { test } from 'vitest';
import { loadPolicySet, judgeManifest, authorizeRequest, compileRowFilter } from '../src/policy/index.js';
import { demoApps } from '../src/catalog/apps.js';
test('smoke', async () => {
  const set = await loadPolicySet();
  console.log(set.version, [...set.policies.keys()]);
  for (const app of demoApps) console.log(app.id, JSON.stringify(judgeManifest(set, app.manifest)));
  const alice = { userId: 'alice', email: 'alice@example.com', role: 'sales_rep', territory: 'EMEA', appId: 'call-notes', clientId: 'call-notes', scopes: ['read:contact.basic'] };
  console.log(authorizeRequest(set, { principal: alice, action: 'read', object: 'contact', resource: { id: 'c1', territory: 'EMEA', owner: 'x' } }));
  console.log(authorizeRequest(set, { principal: alice, action: 'read', object: 'contact', resource: { id: 'c1', territory: 'NA', owner: 'x' } }));
  console.log(compileRowFilter(set, alice, 'read', 'contact'));
  try { compileRowFilter(set, alice, 'export', 'contact'); } catch (e) { console.log((e as Error).message); }
  const bob = { ...alice, userId: 'bob', role: 'sales_manager' };
  try { console.log(compileRowFilter(set, bob, 'export', 'contact')); } catch (e) { console.log((e as Error).message); }
  console.log(compileRowFilter(set, bob, 'export', 'contact', { recordCount: 10, ip: '127.0.0.1' }));
  const dave = { ...alice, userId: 'dave', role: 'admin', territory: undefined };
  try { console.log(compileRowFilter(set, dave, 'read', 'contact')); } catch (e) { console.log((e as Error).message); }
});
