import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { ConfigError } from '../errors/index.js';

/** One answer of a key-service backend: status, parsed JSON body (undefined when not JSON) and headers. */
export interface BackendAnswer {
  status: number;
  body: unknown;
  retryAfter?: string;
}

/**
 * The HTTP path to a key-service backend: certificates verified (against `caFile` when given), no
 * redirects, a timeout per call. A failure to connect rejects with the transport's error.
 */
export interface BackendTransport {
  send(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ): Promise<BackendAnswer>;
  close(): void;
}

export function createBackendTransport(options: { caFile?: string; timeoutMs: number }): BackendTransport {
  let ca: Buffer | undefined;
  if (options.caFile !== undefined) {
    try {
      ca = readFileSync(options.caFile);
    } catch (cause) {
      throw new ConfigError(`secrets: the CA file ${options.caFile} cannot be read`, { cause });
    }
  }
  const agent = new Agent({
    connect: { ...(ca ? { ca } : {}), rejectUnauthorized: true },
    // Short: an idle connection does not keep a finished CLI command alive for long.
    keepAliveTimeout: 2000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return {
    async send(url, init) {
      const attempt = () =>
        request(url, {
          method: init.method as 'GET' | 'POST',
          headers: init.headers,
          ...(init.body === undefined ? {} : { body: init.body }),
          dispatcher: agent,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      // A kept-alive connection the backend closed as it was reused: once more on a new one (every
      // call here is safe to repeat: wrap, unwrap, read, login).
      const answer = await attempt().catch((error: unknown) => {
        if (!isStaleConnection(error)) throw error;
        return attempt();
      });
      const text = await answer.body.text();
      let body: unknown;
      try {
        // Untrusted: read only through the shape checks of the caller.
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      const retryAfter = answer.headers['retry-after'];
      return {
        status: answer.statusCode,
        body,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      };
    },
    close() {
      void agent.close();
    },
  };
}

/** Seconds from a Retry-After header of delta-seconds, within 1..300; a default otherwise. */
export function retryAfterSeconds(header: string | undefined, fallback = 5): number {
  const seconds = header !== undefined && /^\d{1,6}$/.test(header) ? Number(header) : fallback;
  return Math.min(300, Math.max(1, seconds));
}

function isStaleConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
}
