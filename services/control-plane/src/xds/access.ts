import { peerIdentities, TypeUrl, type PeerCall, type XdsTypeUrl } from '@switchyard/shared';
import { pushOrder } from './types.js';

/**
 * Who may receive which xDS resource types: the one rule the xDS server consults per stream.
 * On a mutual-TLS port the client certificate's identities (URI or DNS SANs) decide: the edge
 * fleet gets every type, TLS secrets included; any other identity (a proxyless gRPC client,
 * a tool) gets everything but secrets. A plaintext port (the all-in-one on loopback, or a
 * service started with XDS_INSECURE=true) cannot tell its clients apart and serves every type.
 */

export const everyType: ReadonlySet<XdsTypeUrl> = new Set(pushOrder);
const allButSecrets: ReadonlySet<XdsTypeUrl> = new Set(pushOrder.filter((type) => type !== TypeUrl.Secret));

/** The types a client holding `identities` may receive, when `edgeIdentities` name the edge fleet. */
export function typesForIdentities(identities: readonly string[], edgeIdentities: ReadonlySet<string>): ReadonlySet<XdsTypeUrl> {
  return identities.some((identity) => edgeIdentities.has(identity)) ? everyType : allButSecrets;
}

export interface XdsAccessSettings {
  /** The gRPC port requires a verified client certificate. */
  peersAuthenticated: boolean;
  edgeIdentities: readonly string[];
}

/** The per-call form the xDS server takes (`XdsServerDeps.typesFor`). */
export function xdsAccess(settings: XdsAccessSettings): (call: PeerCall) => ReadonlySet<XdsTypeUrl> {
  if (!settings.peersAuthenticated) return () => everyType;
  const edge = new Set(settings.edgeIdentities);
  return (call) => typesForIdentities(peerIdentities(call), edge);
}
