import { X509Certificate, createPrivateKey } from 'node:crypto';

/**
 * Checks a tenant's certificate and key before they become an SDS secret: Envoy rejects a
 * secret it cannot load, and the HTTPS listener, shared by every tenant, waits for all its
 * secrets. Returns each problem with the spec field it concerns.
 */
export function certificateProblems(certificateChain: string, privateKey: string): { field: string; message: string }[] {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificateChain);
  } catch (error) {
    return [{ field: 'spec.tls.certificateChain', message: `is not a readable PEM certificate: ${(error as Error).message}` }];
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(privateKey);
  } catch (error) {
    return [{ field: 'spec.tls.privateKey', message: `is not a readable unencrypted PEM private key: ${(error as Error).message}` }];
  }
  if (!certificate.checkPrivateKey(key)) {
    return [{ field: 'spec.tls.privateKey', message: 'does not belong to the first certificate of certificateChain' }];
  }
  return [];
}
