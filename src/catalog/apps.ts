import type { Database, Db } from '../store/index.js';

export type AppStatus = 'draft' | 'in_review' | 'approved' | 'suspended' | 'retired';

export interface App {
  id: string;
  clientId: string;
  name: string;
  owner: string;
  status: AppStatus;
  scopes: readonly string[];
  manifest: Readonly<Record<string, unknown>>;
  createdAt: string;
  updatedAt: string;
}

export interface Catalog {
  findAppByClientId(clientId: string): Promise<App | undefined>;
  findApp(id: string): Promise<App | undefined>;
  listApps(): Promise<App[]>;
  /** Inserts the demo apps once; existing apps are left as they are. */
  ensureDemoApps(now?: Date): Promise<void>;
}

/** The three clients every demo starts with (CONTRACT.md "Demo client ids"). */
export const demoApps: ReadonlyArray<Omit<App, 'createdAt' | 'updatedAt' | 'status'>> = [
  {
    id: 'call-notes',
    clientId: 'call-notes',
    name: 'call-notes',
    owner: 'alice@example.com',
    scopes: [
      'read:account.basic',
      'read:contact.basic',
      'read:contact.reach',
      'read:note.basic',
      'write:contact.note',
    ],
    manifest: {
      name: 'call-notes',
      owner: 'alice@example.com',
      purpose: 'log call notes on my accounts',
      scopes: [
        'read:account.basic',
        'read:contact.basic',
        'read:contact.reach',
        'read:note.basic',
        'write:contact.note',
      ],
      data_classes: ['internal', 'pii'],
      retention_days: 30,
      expected_users: 12,
      telemetry: true,
      redirect_uris: ['http://localhost:5173/callback'],
    },
  },
  {
    id: 'pipeline-dashboard',
    clientId: 'pipeline-dashboard',
    name: 'pipeline-dashboard',
    owner: 'bob@example.com',
    scopes: [
      'read:account.basic',
      'read:opportunity.basic',
      'read:opportunity.financial',
      'read:opportunity.aggregate',
    ],
    manifest: {
      name: 'pipeline-dashboard',
      owner: 'bob@example.com',
      purpose: 'show the sales pipeline of my territory',
      scopes: [
        'read:account.basic',
        'read:opportunity.basic',
        'read:opportunity.financial',
        'read:opportunity.aggregate',
      ],
      data_classes: ['internal', 'financial'],
      retention_days: 90,
      expected_users: 25,
      telemetry: true,
      redirect_uris: ['http://localhost:5174/callback'],
    },
  },
  {
    id: 'console',
    clientId: 'console',
    name: 'Gatehouse console',
    owner: 'dave@example.com',
    scopes: ['audit:read', 'admin', 'review'],
    manifest: {
      name: 'console',
      owner: 'dave@example.com',
      purpose: 'administer Gatehouse',
      scopes: ['audit:read', 'admin', 'review'],
      data_classes: ['internal'],
      retention_days: 365,
      expected_users: 5,
      telemetry: true,
      redirect_uris: ['http://127.0.0.1:8080/console/callback'],
    },
  },
];

export function createCatalog(db: Db): Catalog {
  const select = () => db.selectFrom('apps').selectAll();
  return {
    async findAppByClientId(clientId) {
      const row = await select().where('client_id', '=', clientId).executeTakeFirst();
      return row && toApp(row);
    },
    async findApp(id) {
      const row = await select().where('id', '=', id).executeTakeFirst();
      return row && toApp(row);
    },
    async listApps() {
      return (await select().orderBy('id').execute()).map(toApp);
    },
    async ensureDemoApps(now = new Date()) {
      const at = now.toISOString();
      await db
        .insertInto('apps')
        .values(
          demoApps.map((app) => ({
            id: app.id,
            client_id: app.clientId,
            name: app.name,
            owner: app.owner,
            status: 'approved',
            scopes: JSON.stringify(app.scopes),
            manifest: JSON.stringify(app.manifest),
            created_at: at,
            updated_at: at,
          })),
        )
        .onConflict((c) => c.column('id').doNothing())
        .execute();
    },
  };
}

type AppRow = Database['apps'];

function toApp(row: AppRow): App {
  return {
    id: row.id,
    clientId: row.client_id,
    name: row.name,
    owner: row.owner,
    status: row.status as AppStatus,
    scopes: JSON.parse(row.scopes) as string[],
    manifest: JSON.parse(row.manifest) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
