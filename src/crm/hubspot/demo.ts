import { crmObjects, specOf } from '../metadata.js';
import type { CrmConnector, CrmObject, CrmRecord } from '../types.js';
import { standardProperties, type FakeOwner, type FakeRecord, type HubSpotFake } from './fake.js';
import { defaultPropertyMaps, hubspotId, objectTypes } from './mapping.js';

/**
 * Fills the HubSpot fake with the records of another connector (the seeded embedded CRM), so that a
 * demo or a contract test sees the same synthetic data, with the same ids, whichever CRM is behind.
 * Owners become HubSpot owners whose primary team is named after their territory.
 */
export async function seedHubSpotFake(
  fake: HubSpotFake,
  source: CrmConnector,
  owners: readonly { email: string; territory: string }[],
): Promise<void> {
  const fakeOwners: FakeOwner[] = owners.map((owner, i) => ({
    id: String(100 + i),
    email: owner.email.toLowerCase(),
    firstName: owner.email.split('@')[0] ?? '',
    lastName: 'Demo',
    teams: [
      {
        id: String(10 + ['EMEA', 'NA', 'APAC'].indexOf(owner.territory)),
        name: owner.territory,
        primary: true,
      },
    ],
  }));
  fake.loadOwners(fakeOwners);
  const ownerIds = new Map(fakeOwners.map((o) => [o.email, o.id]));
  const definitions = standardProperties();
  let next = 1;
  const ids = new Map<string, string>();
  const idOf = (object: CrmObject, id: string) => {
    let hs = ids.get(id) ?? hubspotId(object, id);
    // Records the source created itself (not seeded) take fresh ids above the seeded ones.
    hs ??= String(10_000_000 + next++);
    ids.set(id, hs);
    return hs;
  };
  for (const object of crmObjects) {
    const map = defaultPropertyMaps[object];
    const types = new Map((definitions[objectTypes[object]] ?? []).map((d) => [d.name, d.type]));
    const spec = specOf(object);
    const records: FakeRecord[] = [];
    for (const row of await everything(source, object)) {
      const properties: Record<string, string | null> = {};
      for (const [field, property] of Object.entries(map)) {
        const value = row[field];
        const fieldSpec = spec.fields.get(field);
        if (value === null || value === undefined || !fieldSpec) properties[property] = null;
        else if (fieldSpec.references) properties[property] = idOf(fieldSpec.references, String(value));
        else if (field === 'owner') properties[property] = ownerIds.get(String(value).toLowerCase()) ?? null;
        else if (fieldSpec.type === 'date' && types.get(property) === 'datetime')
          properties[property] = `${value}T00:00:00.000Z`;
        else properties[property] = String(value);
      }
      records.push({ id: idOf(object, String(row.id)), properties });
    }
    fake.load(objectTypes[object], records);
  }
}

async function everything(source: CrmConnector, object: CrmObject): Promise<CrmRecord[]> {
  const fields = specOf(object).meta.fields.map((f) => f.name);
  const out: CrmRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await source.query(object, {
      fields,
      where: [],
      limit: 10_000,
      ...(cursor ? { cursor } : {}),
    });
    out.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
