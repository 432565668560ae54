import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  certificateChain: string;
  privateKey: string;
}

/** A self-signed certificate for `domains` (SANs) made with openssl, as a tenant would upload it. */
export function makeCertificate(domains: string[], options: { days?: number; key?: string } = {}): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-cert-'));
  try {
    const config = join(dir, 'req.cnf');
    writeFileSync(
      config,
      [
        '[req]',
        'distinguished_name = dn',
        'x509_extensions = ext',
        'prompt = no',
        '[dn]',
        `CN = ${domains[0]}`,
        '[ext]',
        `subjectAltName = ${domains.map((d) => `DNS:${d}`).join(',')}`,
        'basicConstraints = critical,CA:FALSE',
      ].join('\n'),
    );
    const args = ['req', '-x509', '-newkey', options.key ?? 'ec', '-nodes', '-days', String(options.days ?? 30), '-config', config];
    if ((options.key ?? 'ec') === 'ec') args.push('-pkeyopt', 'ec_paramgen_curve:P-256');
    execFileSync('openssl', [...args, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { certificateChain: readFileSync(join(dir, 'cert.pem'), 'utf8'), privateKey: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
