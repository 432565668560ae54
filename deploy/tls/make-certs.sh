#!/bin/sh
# Makes the certificates for mutual TLS between the Envoy fleet and Switchyard's gRPC ports.
#
#   deploy/tls/make-certs.sh [OUT_DIR]          (default: deploy/tls/certs next to this script)
#
# OUT_DIR/ca.crt, ca.key        a private CA (keep ca.key offline once the certificates are made)
# OUT_DIR/<identity>/tls.crt    certificate, signed by the CA
# OUT_DIR/<identity>/tls.key    its private key (mode KEY_MODE, default 0600)
# OUT_DIR/<identity>/ca.crt     the CA certificate, to verify the other side
#
# Servers (URI SAN spiffe://switchyard/<name>, DNS SANs for compose, Kubernetes and localhost):
#   control-plane, stats-sink, event-streamer
# Clients: edge  (URI SAN spiffe://switchyard/edge: the Envoy fleet, the only identity that gets
#                 tenants' TLS secrets over SDS)
#          tools (URI SAN spiffe://switchyard/tools: syctl, scripts, proxyless gRPC clients)
#
# The layout of each directory is that of a Kubernetes TLS Secret with ca.crt (as cert-manager
# writes it), so `kubectl create secret generic --type=kubernetes.io/tls --from-file=DIR` takes it
# as is. Existing files are kept: delete OUT_DIR to make everything anew. See docs/deploy.md.
set -eu

out="${1:-$(cd "$(dirname "$0")" && pwd)/certs}"
days="${CERT_DAYS:-365}"
key_mode="${KEY_MODE:-0600}"
namespace="${SWITCHYARD_NAMESPACE:-switchyard}"
trust_domain="${SPIFFE_TRUST_DOMAIN:-switchyard}"

command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not on PATH" >&2; exit 1; }
umask 077
mkdir -p "$out"

if [ ! -f "$out/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$((days * 3))" \
    -subj "/O=Switchyard/CN=Switchyard xDS CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
  chmod 0644 "$out/ca.crt"
  echo "made $out/ca.crt"
fi

# issue NAME USAGE SAN
issue() {
  name="$1" usage="$2" san="$3" dir="$out/$1"
  if [ -f "$dir/tls.crt" ]; then
    echo "kept $dir/tls.crt"
    return
  fi
  mkdir -p "$dir"
  chmod 0755 "$dir"
  ext="$dir/.ext"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$usage" "$san" >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Switchyard/CN=$name" \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr" "$ext"
  cp "$out/ca.crt" "$dir/ca.crt"
  chmod 0644 "$dir/tls.crt" "$dir/ca.crt"
  chmod "$key_mode" "$dir/tls.key"
  echo "made $dir/tls.crt ($san)"
}

for server in control-plane stats-sink event-streamer; do
  issue "$server" serverAuth \
    "URI:spiffe://$trust_domain/$server,DNS:$server,DNS:$server.$namespace,DNS:$server.$namespace.svc,DNS:$server.$namespace.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
done
issue edge clientAuth "URI:spiffe://$trust_domain/edge"
issue tools clientAuth "URI:spiffe://$trust_domain/tools"
rm -f "$out/ca.srl"
