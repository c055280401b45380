import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { demoListenProblem, loadConfig } from '../src/config/index.js';

/**
 * deploy/ cannot be run here (no Docker daemon), so what can drift from the code is checked instead:
 * the compose file parses, its environment is a valid Gatehouse configuration for a cluster, the load
 * balancer points at its nodes, and the image copies what exists and runs as a non-root user.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  networks?: Record<string, { ipv4_address?: string }>;
}
const compose = parse(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const nodes = Object.entries(compose.services).filter(([name]) => name.startsWith('gatehouse-'));
/** The company IdP an operator sets (compose refuses to start without one). */
const operatorIdp = 'https://idp.example.com/realms/acme';
/**
 * Compose's `${NAME:-default}` as compose fills it with nothing set, and `${NAME:?error}` (required)
 * as the operator fills it.
 */
const interpolate = (value: string) =>
  value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1').replace(/\$\{GATEHOUSE_IDP_ISSUER:\?[^}]*\}/g, operatorIdp);
const nodeEnv = (node: Service) =>
  Object.fromEntries(
    Object.entries(node.environment ?? {}).map(([name, value]) => [name, interpolate(String(value))]),
  );

describe('deploy/compose.yaml', () => {
  it('runs three Gatehouse nodes, PostgreSQL, Redis and a load balancer', () => {
    expect(nodes.map(([name]) => name)).toEqual(['gatehouse-1', 'gatehouse-2', 'gatehouse-3']);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'lb']));
    expect(compose.services.lb?.ports).toEqual(['8443:443', '8080:80']);
  });

  it('gives each node an environment that is a valid scale-out configuration, the same on all', () => {
    for (const [, node] of nodes) {
      const config = loadConfig({
        env: nodeEnv(node),
        overrides: { demo: node.command?.includes('--demo') },
      });
      expect(config.database.url).toBe('postgres://gatehouse:gatehouse@postgres:5432/gatehouse');
      expect(config.redis.url).toBe('redis://redis:6379');
      expect(config.server).toMatchObject({
        host: '0.0.0.0',
        port: 8080,
        publicUrl: 'https://localhost:8443',
        metricsPort: 9464,
      });
      // Exactly the load balancer is trusted to name the client (server.trustedProxies).
      expect(config.server.trustedProxies).toEqual([compose.services.lb?.networks?.default?.ipv4_address]);
      expect(config.dataDir).toBe('/data');
      expect(node.environment).toEqual(nodes[0]?.[1].environment);
    }
  });

  it('runs the real mode with the company IdP the operator must set, never the demo on the network', () => {
    for (const [, node] of nodes) {
      expect(node.command).toEqual(['serve']);
      expect(node.environment?.GATEHOUSE_IDP_ISSUER).toMatch(/^\$\{GATEHOUSE_IDP_ISSUER:\?/);
      const config = loadConfig({ env: nodeEnv(node) });
      expect(config.demo).toBe(false);
      expect(config.idp.issuer).toBe(operatorIdp);
      // Had the node kept `--demo`, it would not start on the address it listens on.
      const demo = loadConfig({ env: nodeEnv(node), overrides: { demo: true } });
      expect(demoListenProblem(demo)).toMatch(/demo mode listens on loopback only/);
    }
  });

  it('reports a node healthy when /readyz answers, and gives SIGTERM longer than the shutdown grace', () => {
    const graceMs = loadConfig({ env: {} }).server.shutdownGraceMs;
    for (const [, node] of nodes) {
      expect(node.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:8080/readyz');
      expect(Number.parseInt(node.stop_grace_period ?? '0', 10) * 1000).toBeGreaterThan(graceMs);
      expect(node.depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
    }
  });
});

describe('deploy/nginx.conf', () => {
  it('terminates TLS 1.2+ on 443 with HSTS, and answers plain HTTP only with a redirect to HTTPS', () => {
    const conf = read('deploy/nginx.conf');
    const servers = conf.split(/\n {2}server \{/).slice(1);
    const plain = servers.find((s) => /listen 80;/.test(s)) ?? '';
    const tls = servers.find((s) => /listen 443 ssl;/.test(s)) ?? '';
    expect(plain).toMatch(/return 308 https:\/\//);
    expect(plain).not.toMatch(/proxy_pass/);
    expect(tls).toMatch(/ssl_protocols TLSv1\.2 TLSv1\.3;/);
    expect(tls).toMatch(/ssl_ciphers (ECDHE-[A-Z0-9-]+(GCM-SHA256|GCM-SHA384|POLY1305):?)+;/);
    expect(tls).toMatch(/Strict-Transport-Security "max-age=31536000; includeSubDomains" always/);
    expect(tls).toMatch(/proxy_pass http:\/\/gatehouse;/);
  });

  it('balances over exactly the compose nodes, on the port they listen on', () => {
    const upstream = /upstream gatehouse \{([^}]*)\}/.exec(read('deploy/nginx.conf'))?.[1] ?? '';
    const servers = [...upstream.matchAll(/server ([\w-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(servers).toEqual(nodes.map(([name]) => `${name}:8080`));
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = read('deploy/Dockerfile');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('builds on node:20-slim in stages and runs as the unprivileged node user', () => {
    expect(dockerfile).toContain('ARG NODE_IMAGE=node:20-slim');
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(finalStage).toMatch(/^USER node$/m);
    expect(finalStage).not.toMatch(/apt-get|g\+\+/);
    expect(finalStage).toMatch(/^EXPOSE 8080$/m);
    expect(finalStage).toContain('ENTRYPOINT ["node", "bin/gatehouse.js"]');
  });

  it('copies only what exists and what its .dockerignore lets into the build context', () => {
    const allowed = read('deploy/Dockerfile.dockerignore')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/\*\*$/, ''));
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] as string).split(' '),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(`${root}${source}`), source).toBe(true);
      expect(allowed, source).toContain(source);
    }
  });
});
