/**
 * The alerting rules (deploy/prometheus/alerts.yml): `promtool test rules` with their tests, and
 * every series they and the Grafana dashboard use is one this server exports (a renamed metric
 * would silence an alert or blank a panel). The Prometheus config passes `promtool check config`
 * laid out as docker-compose.yml's container lays it out.
 * promtool comes with Debian's prometheus package (.ci/run installs it): in CI a missing binary
 * fails the test; elsewhere the promtool case is skipped and says why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/ops/ops.metrics.registry.js';

const DIR = path.resolve(import.meta.dirname, '../../deploy/prometheus');
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
if (!hasPromtool && process.env['CI'] === 'true')
  throw new Error('promtool is missing: CI installs Debian’s prometheus package (.ci/run)');
if (!hasPromtool)
  process.stderr.write(
    'alert-rules.test.ts: promtool not installed (apt-get install prometheus): skipping `promtool test rules`\n',
  );

describe('alerting rules', () => {
  it.skipIf(!hasPromtool)('pass promtool test rules', () => {
    const output = execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR, encoding: 'utf8' });
    expect(output).toContain('SUCCESS');
  });

  it.skipIf(!hasPromtool)(
    'prometheus.yml passes promtool check config, with its rules and token file beside it',
    () => {
      // As docker-compose.yml's entrypoint does: both files copied unchanged, the token written next to them.
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ovation-prometheus-'));
      try {
        for (const file of ['prometheus.yml', 'alerts.yml']) copyFileSync(path.join(DIR, file), path.join(dir, file));
        writeFileSync(path.join(dir, 'metrics-token'), 'a-token');
        const output = execFileSync('promtool', ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8' });
        expect(output).toMatch(/SUCCESS: prometheus\.yml is valid prometheus config file syntax/);
        expect(output).toMatch(/SUCCESS: \d+ rules found/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.each(['prometheus/alerts.yml', 'grafana/dashboards/ovation.json'])(
    '%s uses only series the server exports',
    async (file) => {
      const exported = new Set(
        [...(await createMetrics().render()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
          type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
        ),
      );
      const used = [...readFileSync(path.join(DIR, '..', file), 'utf8').matchAll(/\bovation_[a-z0-9_]+/g)].map(
        ([name]) => name,
      );
      expect(used.length).toBeGreaterThan(5);
      expect(used.filter((name) => !exported.has(name))).toEqual([]);
    },
  );
});
