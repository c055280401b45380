/**
 * The syslog sink for a SIEM: each alert as one CEF record (ArcSight Common Event Format) inside an
 * RFC 5424 syslog message, over UDP (RFC 5426, one datagram each) or TCP (RFC 6587 octet counting).
 */
import { createSocket } from 'node:dgram';
import { hostname } from 'node:os';
import { connect } from 'node:net';
import type { Severity } from './types.js';
import type { Alert, AlertSink } from './alerts.js';

export interface SyslogOptions {
  readonly host: string;
  readonly port: number;
  readonly protocol: 'udp' | 'tcp';
  readonly facility: number;
  readonly minSeverity: Severity;
  readonly timeoutMs?: number;
}

const syslogSeverity: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5 };
const cefSeverity: Record<Severity, number> = { critical: 10, high: 8, medium: 5, low: 3 };
const ruleNames: Record<string, string> = {
  mass_export: 'Mass export of CRM records',
  off_hours_bulk: 'Bulk reads outside working hours',
  rate_anomaly: 'Request rate far above the app baseline',
  denial_burst: 'Burst of denied requests',
  refresh_token_reuse: 'Refresh token reused',
  sensitive_first_access: 'First access to a sensitive field class',
  new_network: 'Access from a new network',
};

const headerEscape = (value: string) =>
  value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]/g, ' ');
const extensionEscape = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

/** The CEF record of an alert. */
export function cefOf(alert: Alert, version: string): string {
  const header = [
    'CEF:0',
    'Gatehouse',
    'Gatehouse',
    version,
    alert.rule,
    ruleNames[alert.rule] ?? alert.rule,
    String(cefSeverity[alert.severity]),
  ].map((part, i) => (i === 0 ? part : headerEscape(part)));
  const extensions: Array<[string, string]> = [
    ['rt', String(Date.parse(alert.sent_at))],
    ['externalId', alert.incident_id],
    ['cat', alert.rule],
    ['suser', alert.actor],
    ['cs1Label', 'appId'],
    ['cs1', alert.app_id],
    ['cs2Label', 'incidentState'],
    ['cs2', alert.state],
    ['cs3Label', 'containment'],
    ['cs3', alert.containment.join('; ')],
    ['cnt', String(alert.detections)],
    ['reason', alert.reason],
    ['msg', alert.summary],
  ];
  return `${header.join('|')}|${extensions.map(([k, v]) => `${k}=${extensionEscape(v)}`).join(' ')}`;
}

/** An RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`. */
export function syslogMessage(options: {
  facility: number;
  severity: Severity;
  timestamp: string;
  hostname: string;
  message: string;
}): string {
  const pri = options.facility * 8 + syslogSeverity[options.severity];
  // Header fields are printable US-ASCII without spaces (RFC 5424 §6.2); '-' when there is none.
  const field = (value: string, max: number) => value.replace(/[^\x21-\x7e]/g, '').slice(0, max) || '-';
  return `<${pri}>1 ${options.timestamp} ${field(options.hostname, 255)} gatehouse ${process.pid} incident - ${options.message}`;
}

export function syslogSink(options: SyslogOptions, version: string): AlertSink {
  const timeoutMs = options.timeoutMs ?? 5000;
  const name = `syslog ${options.protocol} ${options.host}:${options.port}`;
  return {
    name,
    minSeverity: options.minSeverity,
    async send(alert) {
      const message = syslogMessage({
        facility: options.facility,
        severity: alert.severity,
        timestamp: alert.sent_at,
        hostname: hostname(),
        message: cefOf(alert, version),
      });
      const bytes = Buffer.from(message, 'utf8');
      if (options.protocol === 'udp') await sendUdp(options.host, options.port, bytes);
      else await sendTcp(options.host, options.port, bytes, timeoutMs);
    },
  };
}

function sendUdp(host: string, port: number, bytes: Buffer): Promise<void> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  return new Promise<void>((resolve, reject) => {
    socket.send(bytes, port, host, (error) => (error ? reject(error) : resolve()));
  }).finally(() => socket.close());
}

function sendTcp(host: string, port: number, bytes: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`syslog tcp ${host}:${port} timed out`)));
    socket.once('error', reject);
    socket.once('connect', () => {
      // RFC 6587 §3.4.1 octet counting: `<length> <message>`, so a message may hold newlines.
      socket.end(Buffer.concat([Buffer.from(`${bytes.length} `), bytes]), () => resolve());
    });
  });
}
