// Baseline: a plain Node `http` server reading the contact (or a page of 20) from the gateway's SQLite
// file with better-sqlite3, no framework and no governance. argv: <database file>.
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { answerMeasurements, contactColumns } from './measure.js';

const db = new Database(process.argv[2], { readonly: true });
const byId = db.prepare(`select ${contactColumns} from crm_contacts where id = ?`);
const page = db.prepare(`select ${contactColumns} from crm_contacts order by id limit 20`);
const server = createServer((request, response) => {
  const url = request.url ?? '';
  const body = url === '/contacts' ? { records: page.all() } : byId.get(decodeURIComponent(url.slice(10)));
  response.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body ?? {}));
});
server.listen(0, '127.0.0.1', () => {
  answerMeasurements(() => new Promise((resolve) => server.close(resolve)));
  process.send({ url: `http://127.0.0.1:${server.address().port}` });
});
