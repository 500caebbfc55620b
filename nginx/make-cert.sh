#!/bin/sh
# `make cert`: a self-signed certificate for https://localhost, to try HTTPS locally (see
# nginx/README.md). Writes DIR/tls.crt and DIR/tls.key, DIR defaulting to nginx/certs (git-ignored).
# Browsers warn about it, as they should: production certificates come from a CA (Let's Encrypt...).
set -eu

dir=${1:-nginx/certs}
mkdir -p "$dir"
# P-256: small, fast, accepted everywhere, and its key generation prints no progress dots.
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/tls.key")
openssl req -x509 -key "$dir/tls.key" -sha256 -days 365 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" -out "$dir/tls.crt"
echo "$0: wrote $dir/tls.crt and $dir/tls.key (self-signed for localhost, 365 days)"
