/**
 * docker-compose.yml, deploy/nginx.conf and the Dockerfile agree with each other and with the
 * app (test/e2e/production-image.test.ts runs the Dockerfile's steps).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

interface Service {
  build?: unknown;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string }> | string[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const apps = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

/** nginx's size syntax: 512, 16k, 2m, 1g. */
function nginxBytes(size: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(size);
  if (!match) throw new Error(`not an nginx size: ${size}`);
  return (
    Number(match[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']
  );
}

describe('docker-compose.yml', () => {
  it('runs two app instances from the image', () => {
    expect(apps.map(([name]) => name)).toEqual(['app1', 'app2']);
  });

  it('starts the load balancer once every app instance is healthy', () => {
    const dependsOn = compose.services['lb']?.depends_on;
    expect(dependsOn).toEqual(Object.fromEntries(apps.map(([name]) => [name, { condition: 'service_healthy' }])));
    expect(read('Dockerfile')).toMatch(/^HEALTHCHECK /m);
  });

  it.each(apps)(
    '%s: nginx lets through every body the app may refuse itself (its 413 is JSON, nginx’s is HTML)',
    (_, app) => {
      const appLimit = loadConfig({ ...app.environment, JWT_SECRET: undefined }).limits.maxRequestBodyBytes;
      const nginxLimit = /^\s*client_max_body_size\s+(\S+);/m.exec(read('deploy/nginx.conf'))?.[1];
      expect(nginxLimit).toBeDefined();
      expect(nginxBytes(nginxLimit!)).toBeGreaterThan(appLimit);
    },
  );

  it.each(apps)('%s: has no default JWT_SECRET (a published one would sign anyone’s tokens)', (_, app) => {
    expect(app.environment?.['JWT_SECRET']).toMatch(/^\$\{JWT_SECRET:\?[^}]+\}$/);
  });

  it.each(apps)('%s: /metrics needs a METRICS_TOKEN with no default, the one Prometheus gets', (_, app) => {
    expect(app.environment?.['METRICS_TOKEN']).toMatch(/^\$\{METRICS_TOKEN:\?[^}]+\}$/);
    expect(compose.services['prometheus']?.environment?.['METRICS_TOKEN']).toBe(app.environment?.['METRICS_TOKEN']);
  });

  it('Prometheus scrapes every app instance directly (each has its own series), the balancer hides /metrics', () => {
    const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prometheus.scrape_configs.find((c) => c.job_name === 'ovation');
    const targets = apps.map(
      ([name, app]) =>
        `${name}:${loadConfig({ ...app.environment, JWT_SECRET: undefined, METRICS_TOKEN: undefined }).port}`,
    );
    expect(job?.static_configs.flatMap((c) => c.targets)).toEqual(targets);
    expect(read('deploy/nginx.conf')).toMatch(/location = \/metrics \{\s*return 404;/);
  });
});

describe('Dockerfile', () => {
  it("runs a Node major that package.json's engines declare (and CI tests)", () => {
    const majors = [...read('Dockerfile').matchAll(/^FROM node:(\d+)/gm)].map((m) => m[1]);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    expect(majors.length).toBeGreaterThan(0);
    for (const major of majors)
      expect(engines.split('||').map((range) => range.trim())).toContainEqual(
        expect.stringMatching(new RegExp(`^\\^${major}\\.`)),
      );
  });
});

describe('docker-compose.cluster.yml (the Redis Cluster variant, over docker-compose.yml)', () => {
  interface NodeService {
    command?: string[] | string;
    networks?: Record<string, { ipv4_address?: string }> | string[];
    environment?: Record<string, string>;
  }
  const cluster = parse(read('docker-compose.cluster.yml'), { merge: true }) as {
    services: Record<string, NodeService>;
  };
  const masters = Object.entries(cluster.services).filter(
    ([, service]) => Array.isArray(service.command) && service.command.includes('--cluster-enabled'),
  );
  const addressOf = (service: NodeService) =>
    `${Object.values(service.networks as Record<string, { ipv4_address?: string }>)[0]?.ipv4_address}:6379`;

  it('runs three cluster masters that the init service joins, by their fixed addresses', () => {
    expect(masters).toHaveLength(3);
    const init = cluster.services['redis-cluster-init']?.command;
    const script = Array.isArray(init) ? init.join(' ') : String(init);
    expect(script).toContain(`--cluster create ${masters.map(([, s]) => addressOf(s)).join(' ')}`);
  });

  it.each(apps)('%s: configured by the masters as seed nodes, with REDIS_URL unset', (name, app) => {
    const environment = { ...app.environment, ...cluster.services[name]?.environment };
    const config = loadConfig({ ...environment, JWT_SECRET: undefined, METRICS_TOKEN: undefined });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisCluster?.nodes.map((n) => `${n.host}:${n.port}`)).toEqual(masters.map(([, s]) => addressOf(s)));
    expect(cluster.services[name]?.networks).toContain('redis-cluster');
  });
});
