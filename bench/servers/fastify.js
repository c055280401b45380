// Baseline: a bare Fastify route reading the same contact (or page of 20) from the same SQLite file.
// argv: <database file>.
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { answerMeasurements, contactColumns } from './measure.js';

const db = new Database(process.argv[2], { readonly: true });
const byId = db.prepare(`select ${contactColumns} from crm_contacts where id = ?`);
const page = db.prepare(`select ${contactColumns} from crm_contacts order by id limit 20`);
const app = Fastify();
app.get('/contacts', async () => ({ records: page.all() }));
app.get('/contacts/:id', async (request) => byId.get(request.params.id));
await app.listen({ host: '127.0.0.1', port: 0 });
answerMeasurements(() => app.close());
process.send({ url: `http://127.0.0.1:${app.server.address().port}` });
