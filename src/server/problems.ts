import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Negotiator from 'negotiator';
import { errorRegistry, NotFound, problemSlug, problemType, type ErrorCode } from '../errors/index.js';

/** One error code as its page documents it: what a client that fetches a problem's `type` reads. */
export interface ProblemDoc {
  type: string;
  code: ErrorCode;
  status: number;
  title: string;
  remedy: string;
}

const codes = Object.keys(errorRegistry) as ErrorCode[];
const codeBySlug = new Map(codes.map((code) => [problemSlug(code), code]));

export function problemDoc(code: ErrorCode, publicUrl: string): ProblemDoc {
  const { status, title, remedy } = errorRegistry[code];
  return { type: problemType(code, publicUrl), code, status, title, remedy };
}

// One stylesheet, admitted by its hash so the CSP needs no 'unsafe-inline'.
const styles = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1b1f24; line-height: 1.5; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top;
  padding: .4rem .6rem; border-bottom: 1px solid #d0d7de; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
code { font-size: .85rem; background: #eef1f5; padding: 0 .3rem; border-radius: 4px; }
a { color: #0b57d0; }
`;

/** Static documents: nothing runs, nothing loads but the hashed stylesheet, never framed. */
const pageCsp = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(styles).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Registry text marks commands and headers with backticks, as the README does. */
const inline = (text: string) => escape(text).replace(/`([^`]+)`/g, '<code>$1</code>');

function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)} - Gatehouse</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${styles}</style></head>
<body><main>${body}</main></body></html>
`;
}

export function problemTablePage(docs: readonly ProblemDoc[]): string {
  const rows = docs.map(
    (doc) =>
      `<tr id="${problemSlug(doc.code)}"><td><a href="/problems/${problemSlug(doc.code)}"><code>${doc.code}</code></a></td>` +
      `<td>${doc.status}</td><td>${escape(doc.title)}</td><td>${inline(doc.remedy)}</td></tr>`,
  );
  return htmlPage(
    'Errors',
    `<h1>Gatehouse errors</h1>
<p>Every error is an RFC 7807 problem whose <code>type</code> is the page of its code below. Clients switch on <code>code</code>.</p>
<table><thead><tr><th>code</th><th>status</th><th>title</th><th>what to do</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`,
  );
}

export function problemCodePage(doc: ProblemDoc): string {
  return htmlPage(
    doc.code,
    `<h1><code>${doc.code}</code></h1>
<dl><dt>status</dt><dd>${doc.status}</dd><dt>title</dt><dd>${escape(doc.title)}</dd>
<dt>what to do</dt><dd>${inline(doc.remedy)}</dd></dl>
<p><a href="/problems#${problemSlug(doc.code)}">All error codes</a></p>`,
  );
}

const representations = ['text/html', 'application/json'];

/** JSON for a client that asks for it; HTML for browsers and for anyone who does not say. */
function send(request: FastifyRequest, reply: FastifyReply, json: unknown, html: () => string) {
  reply.header('vary', 'accept').header('cache-control', 'public, max-age=3600');
  const type = new Negotiator(request).mediaType(representations);
  if (type === 'application/json') return reply.type('application/json').send(json);
  return reply
    .header('content-security-policy', pageCsp)
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(html());
}

/**
 * `GET /problems` (the table of every code) and `GET /problems/<slug>` (one code): the documentation
 * each problem `type` points to, public like /healthz. The text is the registry's, never the request's.
 */
export function registerProblemPages(app: FastifyInstance, publicUrl: string): void {
  const docs = codes.map((code) => problemDoc(code, publicUrl));
  app.get('/problems', async (request, reply) =>
    send(request, reply, { problems: docs }, () => problemTablePage(docs)),
  );
  app.get<{ Params: { slug: string } }>('/problems/:slug', async (request, reply) => {
    const code = codeBySlug.get(request.params.slug);
    if (code === undefined) throw new NotFound('no such error code; GET /problems lists them all');
    const doc = problemDoc(code, publicUrl);
    return send(request, reply, doc, () => problemCodePage(doc));
  });
}
