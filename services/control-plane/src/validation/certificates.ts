import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

/** Curves Envoy (BoringSSL) serves certificates with, by their OpenSSL names. */
const envoyCurves = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const minRsaBits = 2048;

/**
 * Checks a tenant's certificate and key before they become an SDS secret: Envoy rejects a
 * secret it cannot load, and the HTTPS listener, shared by every tenant, waits for all its
 * secrets. Envoy serves RSA keys of 2048 bits or more and ECDSA keys on P-256, P-384 and
 * P-521 only. With `now`, a certificate already expired (or not yet valid) is refused too:
 * the API refuses to store one, while the translator keeps serving a stored one that has
 * since expired. Fields are relative to the spec (`tls.privateKey`).
 */
export function certificateProblems(certificateChain: string, privateKey: string, now?: number): { field: string; message: string }[] {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificateChain);
  } catch (error) {
    return [{ field: 'tls.certificateChain', message: `is not a readable PEM certificate: ${(error as Error).message}` }];
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKey);
  } catch (error) {
    return [{ field: 'tls.privateKey', message: `is not a readable unencrypted PEM private key: ${(error as Error).message}` }];
  }
  const problems: { field: string; message: string }[] = [];
  const keyProblem = unsupportedKey(key);
  if (keyProblem !== undefined) problems.push({ field: 'tls.privateKey', message: keyProblem });
  else if (!certificate.checkPrivateKey(key)) {
    problems.push({ field: 'tls.privateKey', message: 'does not belong to the first certificate of certificateChain' });
  }
  if (now !== undefined) {
    if (Date.parse(certificate.validTo) <= now) {
      problems.push({ field: 'tls.certificateChain', message: `expired on ${new Date(certificate.validTo).toISOString()}` });
    } else if (Date.parse(certificate.validFrom) > now) {
      problems.push({ field: 'tls.certificateChain', message: `is not valid before ${new Date(certificate.validFrom).toISOString()}` });
    }
  }
  return problems;
}

function unsupportedKey(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    return bits < minRsaBits ? `is a ${bits}-bit RSA key; Envoy needs at least ${minRsaBits} bits` : undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    return envoyCurves.has(curve) ? undefined : `is an EC key on ${curve}; Envoy serves only P-256, P-384 and P-521`;
  }
  return `is a ${key.asymmetricKeyType ?? 'unknown'} key; Envoy serves only RSA and ECDSA certificates`;
}

/** What the API shows of a certificate: enough to tell which one is installed, nothing secret. */
export interface CertificateSummary {
  subject: string;
  subjectAltNames: string[];
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
}

/** The first certificate of a PEM chain, described; undefined when it cannot be read. */
export function certificateSummary(certificateChain: string): CertificateSummary | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificateChain);
  } catch {
    return undefined;
  }
  return {
    subject: certificate.subject.replaceAll('\n', ', '),
    subjectAltNames: (certificate.subjectAltName ?? '').split(', ').filter((name) => name !== ''),
    notBefore: new Date(certificate.validFrom).toISOString(),
    notAfter: new Date(certificate.validTo).toISOString(),
    fingerprintSha256: certificate.fingerprint256,
  };
}
