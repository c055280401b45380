// Baseline: the plain server plus the least issue 21 asks of every answer: an audit event, hashed as a
// Merkle leaf (SHA-256 of its JSON) and durable in its own SQLite file (WAL, synchronous=FULL, one
// group commit per turn of the event loop) before the answer is sent. No token, policy, masking, Merkle
// tree or detection: what no governed read can do without. argv: <database file> <audit file>.
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { answerMeasurements, contactColumns } from './measure.js';

const [databaseFile, auditFile] = process.argv.slice(2);
const db = new Database(databaseFile, { readonly: true });
const byId = db.prepare(`select ${contactColumns} from crm_contacts where id = ?`);
const page = db.prepare(`select ${contactColumns} from crm_contacts order by id limit 20`);

const audit = new Database(auditFile);
audit.pragma('journal_mode = WAL');
audit.pragma('synchronous = FULL');
audit.exec(
  'create table if not exists events (idx integer primary key, event text not null, leaf_hash text not null)',
);
const insert = audit.prepare('insert into events (event, leaf_hash) values (?, ?)');
const commitBatch = audit.transaction((batch) => {
  for (const { event, leafHash } of batch) insert.run(event, leafHash);
});

let batch = [];
function appendDurably(event, answer) {
  const json = JSON.stringify(event);
  const leafHash = createHash('sha256').update('\x00').update(json).digest('hex');
  if (batch.length === 0) setImmediate(flush);
  batch.push({ event: json, leafHash, answer });
}
function flush() {
  const committed = batch;
  batch = [];
  commitBatch(committed);
  for (const { answer } of committed) answer();
}

const server = createServer((request, response) => {
  const url = request.url ?? '';
  const isPage = url === '/contacts';
  const id = isPage ? undefined : decodeURIComponent(url.slice(10));
  const body = isPage ? { records: page.all() } : byId.get(id);
  const event = {
    request_id: randomUUID(),
    at: new Date().toISOString(),
    action: isPage ? 'crm.list' : 'crm.read',
    object: 'contacts',
    record_ids: isPage ? body.records.map((r) => r.id) : [id],
    outcome: body ? 'allowed' : 'not_found',
  };
  appendDurably(event, () => {
    response.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body ?? {}));
  });
});
server.listen(0, '127.0.0.1', () => {
  answerMeasurements(() => new Promise((resolve) => server.close(resolve)));
  process.send({ url: `http://127.0.0.1:${server.address().port}` });
});
