/**
 * A C2SP tlog-witness (c2sp.org/tlog-witness): `POST /add-checkpoint` cosigns a log's checkpoint when
 * it is consistent with the last one this witness cosigned for that log, and answers a timestamped
 * cosignature (c2sp.org/tlog-cosignature). It trusts only the log keys it was started with.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  openCheckpoint,
  splitNote,
  verifyConsistency,
  type Cosigner,
  type NoteVerifier,
} from '../audit/index.js';
import type { WitnessState } from './state.js';

export interface WitnessAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** What a submission came to, for the operator's log: never more than the public checkpoint says. */
export interface WitnessOutcome {
  readonly status: number;
  readonly origin?: string;
  readonly size?: number;
  readonly reason: string;
}

const maxBodyBytes = 128 * 1024;
const maxProofLines = 63;
const hashLine = /^[A-Za-z0-9+/]{43}=$/;

const answer = (status: number, body: string, contentType = 'text/plain; charset=utf-8'): WitnessAnswer => ({
  status,
  contentType,
  body: body.endsWith('\n') ? body : `${body}\n`,
});

/** Decides one add-checkpoint request body; `now` in POSIX seconds. */
export function addCheckpoint(
  body: string,
  logs: readonly NoteVerifier[],
  state: WitnessState,
  cosigner: Cosigner,
  now: number,
): { answer: WitnessAnswer; outcome: WitnessOutcome } {
  const refuse = (status: number, reason: string, origin?: string, size?: number) => ({
    answer: answer(status, reason),
    outcome: { status, reason, ...(origin !== undefined && { origin }), ...(size !== undefined && { size }) },
  });
  // Attacker-controlled: anyone may submit. Framing first, bounded, then the log's signature.
  const blank = body.indexOf('\n\n');
  if (blank < 0)
    return refuse(400, 'the body needs an old size line, proof lines, a blank line and a checkpoint');
  const [oldLine, ...proofLines] = body.slice(0, blank).split('\n');
  const oldMatch = /^old (0|[1-9][0-9]{0,15})$/.exec(oldLine);
  if (!oldMatch || proofLines.length > maxProofLines || !proofLines.every((line) => hashLine.test(line))) {
    return refuse(400, 'malformed old size or consistency proof lines');
  }
  const old = Number(oldMatch[1]);
  const proof = proofLines.map((line) => Buffer.from(line, 'base64'));
  const note = body.slice(blank + 2);
  const split = splitNote(note);
  if (!split.ok) return refuse(400, `malformed checkpoint: ${split.detail}`);
  const origin = split.value.body.slice(0, split.value.body.indexOf('\n'));
  const log = logs.find((candidate) => candidate.name === origin);
  if (!log) return refuse(404, 'unknown log origin', origin);
  const opened = openCheckpoint(note, log);
  if (!opened.ok) {
    return opened.code === 'CHECKPOINT_SIGNATURE_INVALID'
      ? refuse(403, 'no signature by a trusted key of this log', origin)
      : refuse(400, `malformed checkpoint: ${opened.detail}`, origin);
  }
  const { size, root } = opened.checkpoint;
  if (old > size) return refuse(400, 'the old size is larger than the checkpoint size', origin, size);
  if (old === 0 && proof.length > 0) return refuse(400, 'the proof must be empty from size 0', origin, size);
  return state.update(origin, (latest) => {
    const known = latest?.size ?? 0;
    if (old !== known) {
      const reason = `old size ${old}, but the latest cosigned is ${known}`;
      return {
        result: {
          answer: answer(409, String(known), 'text/x.tlog.size'),
          outcome: { status: 409, origin, size, reason },
        },
      };
    }
    if (old === size && latest && !latest.root.equals(root)) {
      return {
        result: refuse(409, 'same size as the cosigned checkpoint, different root hash', origin, size),
      };
    }
    const consistent =
      old === 0 || old === size
        ? proof.length === 0
        : verifyConsistency(old, size, (latest as { root: Buffer }).root, root, proof);
    if (!consistent) {
      // Kept for the operator: a log that cannot prove its history is evidence of misbehaviour.
      return {
        result: refuse(422, `the consistency proof from ${old} to ${size} does not verify`, origin, size),
      };
    }
    return {
      advance: { size, root },
      result: {
        answer: answer(200, cosigner.cosign(split.value.body, now)),
        outcome: { status: 200, origin, size, reason: 'cosigned' },
      },
    };
  });
}

export interface WitnessServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startWitnessServer(options: {
  cosigner: Cosigner;
  logs: readonly NoteVerifier[];
  state: WitnessState;
  host: string;
  port: number;
  onOutcome?: (outcome: WitnessOutcome) => void;
  now?: () => number;
}): Promise<WitnessServer> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const server: Server = createServer((request, response) => {
    const send = ({ status, contentType, body }: WitnessAnswer): void => {
      response.writeHead(status, { 'content-type': contentType }).end(body);
    };
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/add-checkpoint') return send(answer(404, 'no such endpoint; POST /add-checkpoint'));
    if (request.method !== 'POST') return send(answer(405, 'POST only'));
    readBody(request).then(
      (body) => {
        if (body === undefined) {
          send(answer(413, `the body is larger than ${maxBodyBytes} bytes`));
          return;
        }
        const decided = addCheckpoint(body, options.logs, options.state, options.cosigner, now());
        options.onOutcome?.(decided.outcome);
        send(decided.answer);
      },
      () => send(answer(500, 'the witness state cannot be read or written')),
    );
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The body as text, or undefined when it exceeds the bound. */
function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBodyBytes) {
        resolve(undefined);
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
