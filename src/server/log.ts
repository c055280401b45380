import pino, { type Logger } from 'pino';

/**
 * Structured logs that never carry a token, a secret or a record value: credentials are redacted by
 * path, and requests are logged by method and path without the query string (filters hold values).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
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
    destination,
  );
}
