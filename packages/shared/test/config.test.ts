import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, autoscalerEnv, loadConfig, natsCredentialsOf, statsSinkEnv, controlPlaneEnv } from '../src/config.js';

describe('loadConfig', () => {
  it('fills defaults', () => {
    const config = loadConfig(controlPlaneEnv, {});
    expect(config.CONTROL_PLANE_GRPC_PORT).toBe(18000);
    expect(config.API_PORT).toBe(8080);
    expect(config.NATS_URL).toBe('nats://127.0.0.1:4222');
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig(statsSinkEnv, { STATS_SINK_GRPC_PORT: 'abc', LOAD_REPORTING_INTERVAL_MS: '-5', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('STATS_SINK_GRPC_PORT');
    expect(problems).toContain('LOAD_REPORTING_INTERVAL_MS');
    expect(problems).toContain('LOG_LEVEL');
    expect(problems).toContain('"loud"');
  });
});

describe('URL and host variables', () => {
  it.each([
    { NATS_URL: 'nats://127.0.0.1:4222', ok: true },
    { NATS_URL: 'nats://user:secret@nats-0.nats.svc:4222,nats://nats-1.nats.svc:4222', ok: true },
    { NATS_URL: 'tls://nats.example.com:4443', ok: true },
    { NATS_URL: '127.0.0.1:4222', ok: true },
    { NATS_URL: 'nats://[::1]:4222', ok: true },
    { NATS_URL: 'not a url', ok: false },
    { NATS_URL: 'http://127.0.0.1:4222', ok: false },
    { NATS_URL: 'nats://127.0.0.1:99999', ok: false },
    { NATS_URL: 'nats://127.0.0.1:4222/path', ok: false },
    { NATS_URL: 'nats://127.0.0.1:4222,', ok: false },
    { NATS_URL: 'nats://under_score:4222', ok: false },
  ])('NATS_URL=$NATS_URL ok=$ok', ({ NATS_URL, ok }) => {
    const load = () => loadConfig(controlPlaneEnv, { NATS_URL });
    if (ok) expect(load().NATS_URL).toBe(NATS_URL);
    else expect(load).toThrow(/NATS_URL: /);
  });

  it('lists a bad NATS_URL, OTLP endpoint and instance host with the other problems, in one error', () => {
    let error: unknown;
    try {
      loadConfig(autoscalerEnv, {
        NATS_URL: 'not a url',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
        LOCAL_INSTANCE_HOST: 'bad host',
        DRAIN_TIMEOUT_MS: 'soon',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'NATS_URL: "not a url" is not a server address such as nats://127.0.0.1:4222 (got "not a url")',
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL, e.g. http://127.0.0.1:4318 (got "collector:4318")',
      expect.stringMatching(/^DRAIN_TIMEOUT_MS: .* \(got "soon"\)$/),
      'LOCAL_INSTANCE_HOST: must be an IP address or a host name, e.g. 127.0.0.1 (got "bad host")',
    ]);
  });

  it('a service main with NATS_URL="not a url" exits 2 with that one config error, no stack', () => {
    const main = fileURLToPath(new URL('../../../services/stats-sink/dist/src/main.js', import.meta.url));
    if (!existsSync(main)) throw new Error(`${main} is not built; run pnpm build`);
    const result = spawnSync(process.execPath, [main], {
      env: { ...process.env, NATS_URL: 'not a url' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      'invalid configuration:\n  - NATS_URL: "not a url" is not a server address such as nats://127.0.0.1:4222 (got "not a url")\n',
    );
  });
});

describe('a standalone service’s NATS credentials', () => {
  it.each([
    [{}, undefined],
    [{ NATS_PASSWORD: 'p' }, { user: 'stats-sink', password: 'p' }],
    [
      { NATS_USER: 'other', NATS_PASSWORD: 'p' },
      { user: 'other', password: 'p' },
    ],
  ])('%j → %j', (env, expected) => {
    expect(natsCredentialsOf(env, 'stats-sink')).toEqual(expected);
  });

  it.each([
    [{ NATS_PASSWORD: 'p', NATS_PASSWORD_FILE: '/x' }, /NATS_PASSWORD_FILE: is set while NATS_PASSWORD is set/],
    [{ NATS_USER: 'u' }, /NATS_PASSWORD: required/],
    [{ NATS_PASSWORD_FILE: '/nonexistent/password' }, /NATS_PASSWORD_FILE: cannot read/],
    [{ NATS_PASSWORD_FILE: '/dev/null' }, /NATS_PASSWORD_FILE: \/dev\/null is empty/],
  ])('%j is a config error naming the variable', (env, message) => {
    expect(() => natsCredentialsOf(env, 'stats-sink')).toThrow(ConfigError);
    expect(() => natsCredentialsOf(env, 'stats-sink')).toThrow(message);
  });
});
