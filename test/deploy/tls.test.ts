import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import type { Ignore } from '@balena/dockerignore';
import { afterAll, describe, expect, it } from 'vitest';
import { controlPlaneEnv, grpcSecurityOf, loadConfig, sanIdentities } from '@switchyard/shared';
import { bindMounts, loadCompose, serviceEnvironment } from './compose.js';
import { containerEnv, renderKustomization, workloads, type Container, type Workload } from './kube.js';
import { readText, readYaml, repoRoot, services, walk } from './support.js';
import { certsDir, makeCerts } from './tls.js';

/**
 * The mutual TLS between the Envoy fleet and Switchyard's gRPC ports, as deploy/ ships it: the
 * certificates deploy/tls/make-certs.sh makes, the bootstrap's TLS transport sockets, and where
 * compose and Kubernetes mount the certificates and point the services' XDS_TLS_* variables.
 */

const grpcServices = ['control-plane', 'stats-sink', 'event-streamer'] as const;
const dir = makeCerts();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const certificate = (identity: string) => new X509Certificate(readFileSync(join(dir, identity, 'tls.crt')));
const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
const sans = (cert: X509Certificate) => sanIdentities(cert.subjectAltName);
const edgeIdentities = loadConfig(controlPlaneEnv, {}).XDS_EDGE_IDENTITIES;
const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';

describe('deploy/tls/make-certs.sh', () => {
  it('makes a CA that signed every certificate', () => {
    expect(ca.ca).toBe(true);
    for (const identity of [...grpcServices, 'edge', 'tools']) {
      const cert = certificate(identity);
      expect(cert.ca, identity).toBe(false);
      expect(cert.checkIssued(ca), identity).toBe(true);
      expect(cert.verify(ca.publicKey), identity).toBe(true);
      expect(readFileSync(join(dir, identity, 'ca.crt'), 'utf8')).toBe(readFileSync(join(dir, 'ca.crt'), 'utf8'));
    }
  });

  it.each(grpcServices)('gives the %s a server certificate for its compose and Kubernetes names', (service) => {
    const cert = certificate(service);
    expect(cert.keyUsage).toEqual([serverAuth]);
    expect(sans(cert)).toEqual(expect.arrayContaining([`spiffe://switchyard/${service}`, service, `${service}.switchyard.svc`]));
  });

  it('gives the edge fleet a client certificate with the identity the control plane sends secrets to, and tools one without', () => {
    expect(certificate('edge').keyUsage).toEqual([clientAuth]);
    expect(sans(certificate('edge'))).toEqual(edgeIdentities);
    expect(certificate('tools').keyUsage).toEqual([clientAuth]);
    expect(sans(certificate('tools')).some((identity) => edgeIdentities.includes(identity))).toBe(false);
  });

  it('writes where neither git nor the image build context takes it', () => {
    const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => Ignore;
    const ignore = dockerignore({ ignorecase: false }).add(readText('.dockerignore').split('\n'));
    const key = `${certsDir}/edge/tls.key`;
    expect(ignore.ignores(key)).toBe(true);
    const gitIgnored = spawnSync('git', ['check-ignore', '--no-index', '-q', key], { cwd: repoRoot });
    expect(gitIgnored.status).toBe(0);
  });

  it('writes private keys readable by their owner only, and keeps what exists on a second run', () => {
    for (const identity of [...grpcServices, 'edge', 'tools']) expect(statSync(join(dir, identity, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    const before = readFileSync(join(dir, 'edge', 'tls.crt'), 'utf8');
    makeCerts(dir);
    expect(readFileSync(join(dir, 'edge', 'tls.crt'), 'utf8')).toBe(before);
  });
});

interface TlsContext {
  sni: string;
  common_tls_context: {
    tls_certificates: { certificate_chain: { filename: string }; private_key: { filename: string } }[];
    validation_context: {
      trusted_ca: { filename: string };
      match_typed_subject_alt_names: { san_type: string; matcher: { exact: string } }[];
    };
  };
}

const bootstrap = readYaml('deploy/envoy/bootstrap.yaml') as {
  static_resources: { clusters: { name: string; transport_socket?: { name: string; typed_config: { '@type': string } & TlsContext } }[] };
};
const edgeFiles = new Set<string>();

describe('the Envoy bootstrap’s gRPC clusters', () => {
  it.each(grpcServices)('reach %s over mutual TLS, checking its certificate’s identity', (service) => {
    const socket = bootstrap.static_resources.clusters.find((c) => c.name === service)?.transport_socket;
    expect(socket?.name).toBe('envoy.transport_sockets.tls');
    expect(socket?.typed_config['@type']).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    const context = socket?.typed_config as TlsContext;
    const server = sans(certificate(service));
    expect(server).toContain(context.sni);
    const matchers = context.common_tls_context.validation_context.match_typed_subject_alt_names;
    expect(matchers).toEqual([{ san_type: 'URI', matcher: { exact: `spiffe://switchyard/${service}` } }]);
    expect(server).toContain(matchers[0]?.matcher.exact);
    const [chain] = context.common_tls_context.tls_certificates;
    for (const file of [
      chain?.certificate_chain.filename,
      chain?.private_key.filename,
      context.common_tls_context.validation_context.trusted_ca.filename,
    ]) {
      edgeFiles.add(file as string);
    }
    expect([...edgeFiles].map((f) => posix.basename(f)).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
  });

  it('read the edge certificate from one directory', () => {
    expect(new Set([...edgeFiles].map((f) => posix.dirname(f))).size).toBe(1);
  });
});

const edgeDir = () => posix.dirname([...edgeFiles][0] ?? '/etc/switchyard/tls/tls.crt');
const tlsFilesIn = (mountPath: string, env: Record<string, string>) => ({
  XDS_TLS_CERT: env.XDS_TLS_CERT === posix.join(mountPath, 'tls.crt'),
  XDS_TLS_KEY: env.XDS_TLS_KEY === posix.join(mountPath, 'tls.key'),
  XDS_TLS_CLIENT_CA: env.XDS_TLS_CLIENT_CA === posix.join(mountPath, 'ca.crt'),
});
const allTrue = { XDS_TLS_CERT: true, XDS_TLS_KEY: true, XDS_TLS_CLIENT_CA: true };

describe('compose', () => {
  const compose = loadCompose();

  it.each(grpcServices)('mounts the %s’s certificate where its XDS_TLS_* variables point', (service) => {
    const definition = compose.services[service]!;
    const mount = bindMounts(definition).find((m) => m.source === `${certsDir}/${service}`);
    expect(mount?.readOnly).toBe(true);
    const env = serviceEnvironment(definition);
    expect(tlsFilesIn(mount?.target ?? '', env)).toEqual(allTrue);
    expect(grpcSecurityOf(loadConfig(services[service].schema, env)).mode).toBe('mtls');
  });

  it('mounts the edge certificate where the Envoy bootstrap reads it', () => {
    const mount = bindMounts(compose.services.envoy!).find((m) => m.source === `${certsDir}/edge`);
    expect(mount?.target).toBe(edgeDir());
  });
});

describe('Kubernetes', () => {
  const objects = renderKustomization().objects;
  const deployment = (predicate: (c: Container) => boolean): { workload: Workload; container: Container } => {
    for (const workload of workloads(objects)) {
      const container = workload.spec.template.spec.containers.find(predicate);
      if (container !== undefined) return { workload, container };
    }
    throw new Error('no such Deployment');
  };
  /** The mount path of the Secret `secretName` in this container. */
  const secretMount = ({ workload, container }: { workload: Workload; container: Container }, secretName: string) => {
    const volume = workload.spec.template.spec.volumes?.find(
      (v) => (v.secret as { secretName?: string } | undefined)?.secretName === secretName,
    );
    return container.volumeMounts?.find((m) => m.name === volume?.name)?.mountPath;
  };
  const fsGroupReads = (workload: Workload) => {
    const pod = workload.spec.template.spec.securityContext as { fsGroup?: number; runAsGroup?: number } | undefined;
    return pod?.fsGroup !== undefined && pod.fsGroup === pod.runAsGroup;
  };

  it.each(grpcServices)('mounts the Secret switchyard-tls-%s where the service’s XDS_TLS_* variables point', (service) => {
    const found = deployment((c) => c.args?.[0] === service);
    const mountPath = secretMount(found, `switchyard-tls-${service}`);
    expect(mountPath).toBeDefined();
    const env = containerEnv(found.container);
    expect(tlsFilesIn(mountPath as string, env)).toEqual(allTrue);
    expect(grpcSecurityOf(loadConfig(services[service].schema, env)).mode).toBe('mtls');
    expect(fsGroupReads(found.workload)).toBe(true);
  });

  it('mounts the Secret switchyard-tls-edge where the Envoy bootstrap reads it', () => {
    const found = deployment((c) => c.name === 'envoy');
    expect(secretMount(found, 'switchyard-tls-edge')).toBe(edgeDir());
    expect(fsGroupReads(found.workload)).toBe(true);
  });

  it('never puts a private key into a manifest', () => {
    expect([...walk(objects)].filter((n) => typeof n.value === 'string' && n.value.includes('PRIVATE KEY')).map((n) => n.path)).toEqual([]);
  });
});
