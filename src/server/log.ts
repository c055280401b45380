import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** `pretty`: one coloured human line per entry; `json`: JSON lines; `auto`: pretty on a terminal. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/**
 * Structured logs that never carry a token, a secret or a record value: credentials are redacted by
 * path, and requests are logged by method and path without the query string (filters hold values).
 */
export function createLogger(
  level: string,
  destination?: pino.DestinationStream,
  format: LogFormat = 'json',
): Logger {
  const human = format === 'pretty' || (format === 'auto' && !destination && process.stdout.isTTY === true);
  return pino(
    {
      level,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers.dpop',
          'headers.authorization',
          'authorization',
          'access_token',
          'refresh_token',
          'subject_token',
          'id_token',
          'token',
          '*.access_token',
          '*.subject_token',
          '*.token',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method: string; url: string; id: string; routeOptions?: { url?: string } }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    human ? humanLines(destination) : destination,
  );
}

/**
 * pino-pretty on one line: the clock time, the level in colour (warnings and errors, such as a
 * containment, stand out) and the message; the request id and other fields stay in the JSON form.
 */
function humanLines(destination?: pino.DestinationStream): pino.DestinationStream {
  return pretty({
    colorize: destination ? false : process.stdout.isTTY === true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,reqId,req,res,responseTime,method,path,status,app,user,ms,code,incident',
    ...(destination ? { destination: destination as NodeJS.WritableStream } : {}),
  });
}

/**
 * Node.js majors past their end of life, and when it came. Node 20's V8 also aborts now and then in a
 * deoptimisation of the policy code (README, Runtime).
 */
const endOfLife: Readonly<Record<number, string>> = { 18: 'April 2025', 20: 'April 2026' };

/** The one start-up warning for a runtime past its end of life, or nothing. */
export function runtimeWarning(nodeVersion: string): string | undefined {
  const major = Number(nodeVersion.replace(/^v/, '').split('.')[0]);
  const ended = endOfLife[major];
  return ended
    ? `Node.js ${major} reached end of life in ${ended}: run Gatehouse on Node.js 24 LTS (${nodeVersion} still works)`
    : undefined;
}
