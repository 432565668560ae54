import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createObservability } from '@switchyard/shared';
import { createSinkMetrics } from '../src/sink-metrics.js';
import { TenantMetrics } from '../src/tenant-metrics.js';

/**
 * The Prometheus and Grafana files under deploy/ (promtool is not available here): their
 * structure, and that every switchyard_* metric they query is one the stats-sink exports.
 */

const deploy = (path: string) => fileURLToPath(new URL(`../../../deploy/${path}`, import.meta.url));
const yamlFile = (path: string) => parse(readFileSync(deploy(path), 'utf8')) as Record<string, unknown>;
const jsonFile = (path: string) => JSON.parse(readFileSync(deploy(path), 'utf8')) as Record<string, unknown>;

async function exportedMetricNames(): Promise<Set<string>> {
  const observability = createObservability('stats-sink');
  createSinkMetrics(observability.registry);
  new TenantMetrics(observability.registry, 100);
  const names = new Set<string>();
  for (const metric of await observability.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

/** The switchyard_* metric names a PromQL expression uses, and whether its brackets balance. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bswitchyard_\w+/g)].map((m) => m[0]);
}

function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  let quoted = false;
  for (const char of expr) {
    if (char === '"') quoted = !quoted;
    if (quoted) continue;
    if ('([{'.includes(char)) stack.push(char);
    else if (char in pairs && stack.pop() !== pairs[char]) return false;
  }
  return stack.length === 0 && !quoted;
}

describe('deploy/prometheus', () => {
  it('scrapes the services (both activator replicas) on their admin ports and loads the alert rules', () => {
    const config = yamlFile('prometheus/prometheus.yml') as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toEqual(['alerts.yml']);
    const targets = Object.fromEntries(config.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]));
    expect(targets).toEqual({
      'control-plane': ['control-plane:9401'],
      'stats-sink': ['stats-sink:9402'],
      'event-streamer': ['event-streamer:9403'],
      autoscaler: ['autoscaler:9404'],
      activator: ['activator-1:9405', 'activator-2:9405'],
    });
  });

  it('has well-formed alert rules on metrics the stats-sink exports, including 5xx ratio and stale Envoys', async () => {
    const rules = (yamlFile('prometheus/alerts.yml') as { groups: { name: string; rules: Record<string, unknown>[] }[] }).groups.flatMap(
      (g) => g.rules,
    );
    const known = await exportedMetricNames();
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['SwitchyardRevision5xxRatioHigh', 'SwitchyardEnvoyStale']));
    for (const rule of rules) {
      const expr = rule.expr as string;
      expect(typeof rule.alert, JSON.stringify(rule)).toBe('string');
      expect(balanced(expr), `${String(rule.alert)}: unbalanced brackets`).toBe(true);
      expect(['info', 'warning', 'critical']).toContain((rule.labels as Record<string, string>).severity);
      expect(typeof (rule.annotations as Record<string, string>).summary).toBe('string');
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
      for (const metric of metricsIn(expr)) expect(known, `${String(rule.alert)} uses ${metric}`).toContain(metric);
    }
    const ratio = rules.find((r) => r.alert === 'SwitchyardRevision5xxRatioHigh')?.expr as string;
    expect(ratio).toContain('code_class="5xx"');
  });
});

describe('deploy/grafana', () => {
  it('provisions the Prometheus data source and the dashboards folder', () => {
    const datasources = yamlFile('grafana/provisioning/datasources/prometheus.yml') as { datasources: Record<string, unknown>[] };
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: 'switchyard-prometheus', url: 'http://prometheus:9090' }),
    ]);
    const dashboards = yamlFile('grafana/provisioning/dashboards/switchyard.yml') as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(dashboards.providers).toEqual([expect.objectContaining({ type: 'file', options: { path: '/var/lib/grafana/dashboards' } })]);
  });

  it.each(['tenant-traffic.json', 'stats-sink.json'])(
    '%s: panels query exported metrics through the provisioned data source',
    async (file) => {
      const dashboard = jsonFile(`grafana/dashboards/${file}`) as {
        uid: string;
        panels: { id: number; gridPos: Record<string, number>; datasource: { uid: string }; targets: { expr: string; refId: string }[] }[];
        templating: { list: { name: string }[] };
      };
      const known = await exportedMetricNames();
      const variables = new Set(['__rate_interval', '__interval', ...dashboard.templating.list.map((v) => v.name)]);
      expect(dashboard.uid).toMatch(/^switchyard-/);
      expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
      for (const panel of dashboard.panels) {
        expect(panel.datasource.uid).toBe('switchyard-prometheus');
        expect(Object.keys(panel.gridPos).sort()).toEqual(['h', 'w', 'x', 'y']);
        expect(panel.targets.length).toBeGreaterThan(0);
        for (const target of panel.targets) {
          expect(balanced(target.expr), target.expr).toBe(true);
          for (const metric of metricsIn(target.expr)) expect(known, `panel ${panel.id} uses ${metric}`).toContain(metric);
          for (const [, name] of target.expr.matchAll(/\$(\w+)/g)) expect(variables, `panel ${panel.id} uses $${name}`).toContain(name);
        }
      }
    },
  );

  it('the tenant dashboard shows traffic, errors and concurrency per tenant', () => {
    const dashboard = jsonFile('grafana/dashboards/tenant-traffic.json') as {
      panels: { targets: { expr: string }[] }[];
      templating: { list: { name: string }[] };
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    expect(exprs).toContain('switchyard_tenant_responses_total');
    expect(exprs).toContain('code_class="5xx"');
    expect(exprs).toContain('switchyard_tenant_concurrency');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['tenant', 'service', 'revision']);
  });
});
