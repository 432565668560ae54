import { request } from 'node:http';
import { createConnection } from 'node:net';
import type { HealthCheckSpec } from '@switchyard/shared';

/**
 * One readiness probe of an instance, as the service's health check defines it: an HTTP GET
 * of its path answered with a 2xx status, or a TCP connect.
 */
export function probe(host: string, port: number, check: Pick<HealthCheckSpec, 'protocol' | 'path' | 'timeout'>): Promise<boolean> {
  return check.protocol === 'http' ? probeHttp(host, port, check.path, check.timeout) : probeTcp(host, port, check.timeout);
}

function probeHttp(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: timeoutMs }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}
