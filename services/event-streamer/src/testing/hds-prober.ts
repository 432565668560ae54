import { request as httpRequest } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { HdsClient, type AssignedEndpoint, type ClusterCheck, type EnvoyHealthStatus, type HdsClientOptions } from './hds-client.js';

/**
 * An HDS client that runs the checks it is assigned for real, the way Envoy's health checker
 * does, for end-to-end tests where no Envoy binary is available: TCP connect or HTTP GET (with
 * the specifier's path, Host, expected statuses, HTTP/1.1 or HTTP/2) every interval with its
 * timeout; a host starts unhealthy, one success marks it healthy at first, then
 * `healthy_threshold` consecutive successes and `unhealthy_threshold` consecutive failures
 * flip it; results go back every report interval.
 */

type Duration = { seconds?: string | number; nanos?: number } | undefined;

interface HttpCheck {
  path?: string;
  host?: string;
  expected_statuses?: { start?: string | number; end?: string | number }[];
  codec_client_type?: string;
}

interface Probe {
  endpoint: AssignedEndpoint;
  check: ClusterCheck['healthCheck'];
  status: EnvoyHealthStatus;
  everHealthy: boolean;
  successes: number;
  failures: number;
  timer: NodeJS.Timeout;
  running: boolean;
}

const ms = (d: Duration, fallback: number) =>
  d === undefined ? fallback : Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6);
const threshold = (value: unknown) => Number((value as { value?: number } | undefined)?.value ?? 1);

export class HdsProber {
  readonly client: HdsClient;
  private readonly probes = new Map<string, Probe>();
  private reportTimer: NodeJS.Timeout | undefined;
  private reportEveryMs = 0;

  constructor(address: string, options: Omit<HdsClientOptions, 'onSpecifier'>) {
    this.client = new HdsClient(address, { ...options, onSpecifier: () => this.apply() });
  }

  /** The current status of every endpoint being checked, by `cluster|address|port`. */
  statuses(): Record<string, EnvoyHealthStatus> {
    return Object.fromEntries([...this.probes].map(([key, probe]) => [key, probe.status]));
  }

  close(): void {
    clearInterval(this.reportTimer);
    for (const probe of this.probes.values()) clearInterval(probe.timer);
    this.probes.clear();
    this.client.close();
  }

  private apply(): void {
    const wanted = new Map<string, { endpoint: AssignedEndpoint; check: ClusterCheck['healthCheck'] }>();
    for (const cluster of this.client.checks) {
      for (const e of cluster.endpoints) {
        wanted.set(`${cluster.cluster}|${e.address}|${e.port}`, {
          endpoint: { cluster: cluster.cluster, ...e },
          check: cluster.healthCheck,
        });
      }
    }
    for (const [key, probe] of this.probes) {
      if (wanted.has(key) && JSON.stringify(wanted.get(key)?.check) === JSON.stringify(probe.check)) continue;
      clearInterval(probe.timer);
      this.probes.delete(key);
    }
    for (const [key, { endpoint, check }] of wanted) {
      if (this.probes.has(key)) continue;
      const probe: Probe = {
        endpoint,
        check,
        status: 'UNHEALTHY',
        everHealthy: false,
        successes: 0,
        failures: 0,
        running: false,
        timer: setInterval(() => void this.run(probe), ms(check.interval as Duration, 5000)),
      };
      this.probes.set(key, probe);
      void this.run(probe);
    }
    if (this.reportEveryMs !== this.client.reportIntervalMs) {
      clearInterval(this.reportTimer);
      this.reportEveryMs = this.client.reportIntervalMs;
      this.reportTimer = setInterval(() => this.report(), this.reportEveryMs);
    }
  }

  private report(): void {
    this.client.report([...this.probes.values()].map((p) => ({ ...p.endpoint, status: p.status })));
  }

  private async run(probe: Probe): Promise<void> {
    if (probe.running) return;
    probe.running = true;
    const outcome = await check(probe.endpoint, probe.check);
    probe.running = false;
    if (outcome === 'ok') {
      probe.failures = 0;
      probe.successes++;
      if (probe.status !== 'HEALTHY' && (!probe.everHealthy || probe.successes >= threshold(probe.check.healthy_threshold))) {
        probe.status = 'HEALTHY';
        probe.everHealthy = true;
      }
    } else {
      probe.successes = 0;
      probe.failures++;
      if (probe.status !== 'HEALTHY' || probe.failures >= threshold(probe.check.unhealthy_threshold)) {
        probe.status = outcome === 'timeout' ? 'TIMEOUT' : 'UNHEALTHY';
      }
    }
  }
}

function check(endpoint: AssignedEndpoint, healthCheck: ClusterCheck['healthCheck']): Promise<Outcome> {
  const timeoutMs = ms(healthCheck.timeout as Duration, 1000);
  const http = healthCheck.http_health_check as HttpCheck | undefined;
  if (http === undefined) return tcpCheck(endpoint, timeoutMs);
  const accepted = (status: number) =>
    (http.expected_statuses ?? [{ start: 200, end: 201 }]).some((r) => status >= Number(r.start ?? 0) && status < Number(r.end ?? 0));
  return http.codec_client_type === 'HTTP2'
    ? http2Check(endpoint, http, timeoutMs, accepted)
    : http1Check(endpoint, http, timeoutMs, accepted);
}

type Outcome = 'ok' | 'failed' | 'timeout';

/** Runs one check attempt: `start` begins it and returns its cleanup; the first outcome (or the timeout) wins. */
function attempt(timeoutMs: number, start: (done: (outcome: Outcome) => void) => () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let cleanup = () => {};
    const done = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup();
      resolve(outcome);
    };
    // After the event loop stalls (a crowded machine), the timer phase runs before the I/O
    // callbacks already waiting: deferring the timeout past them keeps a stall from looking
    // like an endpoint that did not answer.
    const timer = setTimeout(() => setImmediate(() => done('timeout')), timeoutMs);
    cleanup = start(done);
  });
}

function tcpCheck(endpoint: AssignedEndpoint, timeoutMs: number): Promise<Outcome> {
  return attempt(timeoutMs, (done) => {
    const socket = tcpConnect({ host: endpoint.address, port: endpoint.port });
    socket.once('connect', () => done('ok'));
    socket.once('error', () => done('failed'));
    return () => socket.destroy();
  });
}

function http1Check(
  endpoint: AssignedEndpoint,
  http: HttpCheck,
  timeoutMs: number,
  accepted: (status: number) => boolean,
): Promise<Outcome> {
  return attempt(timeoutMs, (done) => {
    const headers = { host: http.host ?? endpoint.cluster };
    const req = httpRequest(
      { host: endpoint.address, port: endpoint.port, path: http.path ?? '/', method: 'GET', headers, agent: false },
      (res) => {
        res.resume();
        done(accepted(res.statusCode ?? 0) ? 'ok' : 'failed');
      },
    );
    req.once('error', () => done('failed'));
    req.end();
    return () => req.destroy();
  });
}

function http2Check(
  endpoint: AssignedEndpoint,
  http: HttpCheck,
  timeoutMs: number,
  accepted: (status: number) => boolean,
): Promise<Outcome> {
  return attempt(timeoutMs, (done) => {
    const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
    const session = http2Connect(`http://${host}:${endpoint.port}`);
    session.once('error', () => done('failed'));
    const stream = session.request({ ':method': 'GET', ':path': http.path ?? '/', ':authority': http.host ?? endpoint.cluster });
    stream.once('response', (headers) => done(accepted(Number(headers[':status'])) ? 'ok' : 'failed'));
    stream.once('error', () => done('failed'));
    stream.end();
    return () => session.destroy();
  });
}
