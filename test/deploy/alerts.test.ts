import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { readYaml, repoPath, requireCommand } from './support.js';

const alertsFile = 'deploy/prometheus/alerts.yml';
const testsFile = 'deploy/prometheus/alerts.test.yml';

interface RuleGroups {
  groups: { rules: { alert?: string }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('the alert rules (deploy/prometheus/alerts.yml) under promtool test rules', () => {
  const alerts = (readYaml(alertsFile) as RuleGroups).groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
  const cases = (readYaml(testsFile) as RuleTests).tests.flatMap((t) => t.alert_rule_test ?? []);

  it.each(alerts)('%s has a case where it fires and one where it stays quiet', (alert) => {
    const own = cases.filter((c) => c.alertname === alert);
    expect(
      own.some((c) => c.exp_alerts.length > 0),
      `${testsFile} has no case where ${alert} fires`,
    ).toBe(true);
    expect(
      own.some((c) => c.exp_alerts.length === 0),
      `${testsFile} has no case where ${alert} stays quiet`,
    ).toBe(true);
  });

  it('tests only alerts that exist', () => {
    expect(cases.map((c) => c.alertname).filter((name) => !alerts.includes(name))).toEqual([]);
  });

  it('passes every case', () => {
    requireCommand('promtool', ['--version'], 'scripts/setup.sh installs it (Debian package prometheus)');
    const result = spawnSync('promtool', ['test', 'rules', repoPath(testsFile)], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });
});
