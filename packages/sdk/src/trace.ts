import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';

const tracer = () => trace.getTracer('@gatehouse/sdk');

const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

/** A fresh W3C traceparent (Trace Context §3.2), never an all-zero id. */
export function newTraceparent(): string {
  let traceId = hex(16);
  while (/^0+$/.test(traceId)) traceId = hex(16);
  let parentId = hex(8);
  while (/^0+$/.test(parentId)) parentId = hex(8);
  return `00-${traceId}-${parentId}-01`;
}

/**
 * Runs one call inside a client span and puts its context on `headers`: with an OpenTelemetry SDK
 * registered by the app (its exporter, its choice) the span is recorded and propagated; without one,
 * the call still carries a fresh traceparent so the audit trail can be joined to it.
 */
export async function traced(
  name: string,
  headers: Headers,
  run: (span: Span) => Promise<Response>,
): Promise<Response> {
  return tracer().startActiveSpan(name, { kind: SpanKind.CLIENT }, async (span) => {
    try {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      headers.set('traceparent', carrier.traceparent ?? newTraceparent());
      const response = await run(span);
      span.setAttribute('http.response.status_code', response.status);
      const requestId = response.headers.get('x-request-id');
      if (requestId) span.setAttribute('gatehouse.request_id', requestId);
      if (response.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
      return response;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}
