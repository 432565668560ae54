import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type GrpcSecurity } from './config.js';

/**
 * Server credentials for a host's gRPC port. Mutual TLS requires a client certificate signed
 * by the client CA: a client without one fails the handshake and never reaches a service.
 * Unreadable files are a ConfigError naming the variable.
 */
export function grpcServerCredentials(security: GrpcSecurity): grpc.ServerCredentials {
  if (security.mode === 'plaintext') return grpc.ServerCredentials.createInsecure();
  const problems: string[] = [];
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      return Buffer.alloc(0);
    }
  };
  const cert = read('XDS_TLS_CERT', security.certFile);
  const key = read('XDS_TLS_KEY', security.keyFile);
  const ca = read('XDS_TLS_CLIENT_CA', security.clientCaFile);
  if (problems.length > 0) throw new ConfigError(problems);
  // grpc-js checks the PEM only when it binds; check now, with the variables' names.
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    problems.push(`XDS_TLS_CERT, XDS_TLS_KEY: not a PEM certificate with its private key (${(err as Error).message})`);
  }
  try {
    createSecureContext({ ca });
  } catch (err) {
    problems.push(`XDS_TLS_CLIENT_CA: not a PEM CA certificate (${(err as Error).message})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

const sanEntryPattern = /\s*([^:,"]+):("(?:[^"\\]|\\.)*"|[^,"]*)(,|$)/y;

/**
 * The DNS and URI names of a certificate's subjectAltName as Node prints it
 * (`DNS:a.example, URI:spiffe://switchyard/edge`; values with commas or quotes come JSON-quoted).
 * Entries are read one after another, so text inside a quoted value is never taken for an
 * entry; a string that does not parse yields no identity at all. Other kinds (IP Address,
 * email) are not identities here.
 */
export function sanIdentities(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  const identities: string[] = [];
  const sanEntry = new RegExp(sanEntryPattern);
  while (sanEntry.lastIndex < subjectAltName.length) {
    const match = sanEntry.exec(subjectAltName);
    if (match === null) return [];
    const [, kind, raw, separator] = match as unknown as [string, string, string, string];
    if (kind === 'DNS' || kind === 'URI') identities.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
    if (separator === '') break;
  }
  return identities;
}

/** Any server call: what the peer proved in the TLS handshake. */
export type PeerCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>;

/** The identities of a call's verified client certificate; none on a plaintext port. */
export function peerIdentities(call: PeerCall): string[] {
  return sanIdentities(call.getAuthContext().sslPeerCertificate?.subjectaltname);
}

/** PEM files of a client's identity for a mutual-TLS gRPC port (e.g. the tools certificate of make-certs.sh). */
export interface ClientTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Channel credentials presenting a client certificate and trusting the given CA. */
export function grpcClientCredentials(files: ClientTlsFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(readFileSync(files.caFile), readFileSync(files.keyFile), readFileSync(files.certFile));
}
