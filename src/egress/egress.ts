/**
 * The one way Gatehouse calls an address someone configured (webhooks, alert sinks, audit hooks). The
 * address is checked where the socket connects: the DNS answer goes through `destinationRefusal` inside
 * the connector's own lookup, so a name that resolved to a public address for a check and to
 * 169.254.169.254 a moment later (DNS rebinding) never gets a connection. Redirects are never followed;
 * time and answer size are bounded.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { DestinationRefused } from '../errors/index.js';
import { destinationRefusal, parseAllowList, type AllowList } from './destination.js';

export interface EgressOptions {
  /** CIDRs that may be reached although private (`net.allowPrivateDestinations`). */
  readonly allowPrivateDestinations: readonly string[];
  /** Name resolution; the system resolver unless a test stands in for DNS. */
  readonly lookup?: LookupFunction;
  /** Extra trusted CA certificates (PEM) for HTTPS destinations. */
  readonly ca?: string;
}

export interface OutboundRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** The whole exchange, connect to last byte. */
  readonly timeoutMs: number;
  /** Answers longer than this are cut off and count as a failure. */
  readonly maxBytes?: number;
}

export interface OutboundResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface Egress {
  /**
   * Sends one request to `url`. Rejects with DestinationRefused (`DESTINATION_REFUSED`) when the address
   * is not permitted or the answer is a redirect or too large; with the transport's error otherwise.
   */
  send(url: string | URL, init: OutboundRequest): Promise<OutboundResponse>;
  close(): Promise<void>;
}

const defaultMaxBytes = 64 * 1024;
const allowHint = '; net.allowPrivateDestinations may allow it';

/** A resolver that answers only permitted addresses, and refuses the name if any answer is not. */
export function guardedLookup(allow: AllowList, resolve: LookupFunction = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, found) => {
      if (error) return callback(error, '', 0);
      const addresses = found as unknown as LookupAddress[];
      const refusal = addresses.map((a) => destinationRefusal(a.address, allow)).find(Boolean);
      if (refusal || addresses.length === 0) {
        const what = refusal ? `${refusal}, not a public address${allowHint}` : 'no address';
        return callback(new DestinationRefused(`${hostname} resolves to ${what}`), '', 0);
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const [first] = addresses as [LookupAddress];
      callback(null, first.address, first.family);
    });
  };
}

export function createEgress(options: EgressOptions): Egress {
  const allow = parseAllowList(options.allowPrivateDestinations);
  const agent = new Agent({
    connect: { lookup: guardedLookup(allow, options.lookup), ...(options.ca ? { ca: options.ca } : {}) },
  });
  return {
    async send(target, init) {
      const url = new URL(target);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new DestinationRefused(`${url.protocol} is not http(s)`);
      }
      // The connector skips DNS for an IP literal, so a literal is judged here.
      const literal = url.hostname.replace(/^\[|\]$/g, '');
      if (isIP(literal)) {
        const refusal = destinationRefusal(literal, allow);
        if (refusal) throw new DestinationRefused(`${refusal} is not a public address${allowHint}`);
      }
      const signal = AbortSignal.timeout(init.timeoutMs);
      const response = await request(url, {
        dispatcher: agent,
        method: init.method,
        headers: init.headers,
        body: init.body,
        signal,
        headersTimeout: init.timeoutMs,
        bodyTimeout: init.timeoutMs,
      });
      const limit = init.maxBytes ?? defaultMaxBytes;
      if (response.statusCode >= 300 && response.statusCode < 400) {
        await response.body.dump();
        throw new DestinationRefused(`answered ${response.statusCode}, a redirect (never followed)`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      // Leaving the loop early closes the stream: an oversized answer is not read to its end.
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) break;
        chunks.push(chunk);
      }
      if (size > limit) throw new DestinationRefused(`answered more than ${limit} bytes`);
      const type = response.headers['content-type'];
      return {
        status: response.statusCode,
        contentType: (Array.isArray(type) ? type[0] : type) ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
      };
    },
    close: () => agent.close(),
  };
}
