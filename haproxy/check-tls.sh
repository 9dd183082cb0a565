#!/usr/bin/env bash
# haproxy/check-tls.sh HAPROXY CONFIG [HAPROXY -c ARGS...]
#
# `haproxy -c -f CONFIG` with a throwaway self-signed certificate in
# SIGSTREAM_LB_TLS_CERT: haproxy -c loads the certificate of every TLS bind,
# and haproxy-docker.cfg's real one (/etc/haproxy/certs/sigstream.pem) only
# exists inside the container. Used by the deploy check
# deploy.haproxy_docker_config (tests/CMakeLists.txt). Needs openssl.
set -euo pipefail

(($# >= 2)) || { echo "usage: $0 HAPROXY CONFIG [ARGS...]" >&2; exit 2; }
haproxy=$1 config=$2
shift 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sigstream-haproxy-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>"$tmp/openssl.log" ||
  { cat "$tmp/openssl.log" >&2; echo "$0: openssl could not make a test certificate" >&2; exit 1; }
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/sigstream.pem"

SIGSTREAM_LB_TLS_CERT=$tmp/sigstream.pem "$haproxy" -c -f "$config" "$@"
