#!/usr/bin/env bash
# Makes a local certificate authority and a certificate signed by it for
# localhost and 127.0.0.1 (ECDSA P-256, 30 days), for trying TLS locally and
# for the tests: trust ca.pem, serve with server.pem and server.key.
# Usage: make-tls-cert.sh OUTDIR [SUBJECT_ALT_NAMES]
#   SUBJECT_ALT_NAMES: instead of "DNS:localhost,IP:127.0.0.1", say
#   "DNS:elsewhere.test" for a certificate that names another host.
# Existing files in OUTDIR are replaced.
set -euo pipefail
out=${1:?usage: make-tls-cert.sh OUTDIR [SUBJECT_ALT_NAMES]}
san=${2:-DNS:localhost,IP:127.0.0.1}
mkdir -p "$out"
cd "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=UVWebSocket local CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out server.pem \
    -extfile <(printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
rm -f server.csr ca.srl
echo "$out: ca.pem (trust it), server.pem and server.key (serve with them) for $san"
