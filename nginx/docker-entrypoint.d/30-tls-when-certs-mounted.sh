#!/bin/sh
# Turns HTTPS on when a certificate is mounted, and does nothing otherwise (so the dev stack stays
# on plain http://localhost). docker-compose.tls.yml mounts it into /docker-entrypoint.d/, whose
# scripts the image's entrypoint runs before nginx starts; web/tests/test_tls.py runs it too.
#
# With NGINX_CERTS_DIR/tls.crt and tls.key present it writes NGINX_TLS_CONF_DIR/https.conf, which
# the server in default.conf.template includes (`include tls.d/*.conf;`): HTTPS with HTTP/2 on
# NGINX_TLS_PORT, plain HTTP redirected there, HSTS. The redirect names NGINX_PUBLIC_HOST (the
# host[:port] browsers use for HTTPS), never the client's Host header. `listen ... ssl http2` is
# nginx 1.22's syntax; from 1.25.1 it is deprecated (a warning): `listen ... ssl;` + `http2 on;`.
#
# Settings (environment), with defaults: NGINX_CERTS_DIR=/etc/nginx/certs,
# NGINX_TLS_CONF_DIR=/etc/nginx/tls.d, NGINX_TLS_PORT=443, NGINX_PUBLIC_HOST=localhost.
set -eu

certs=${NGINX_CERTS_DIR:-/etc/nginx/certs}
conf=${NGINX_TLS_CONF_DIR:-/etc/nginx/tls.d}/https.conf
port=${NGINX_TLS_PORT:-443}
public_host=${NGINX_PUBLIC_HOST:-localhost}

log() {
    echo "$0: $*" >&2
}

if [ ! -f "$certs/tls.crt" ] || [ ! -f "$certs/tls.key" ]; then
    # Also after a restart of a container whose certificate has been unmounted since.
    rm -f "$conf"
    log "no $certs/tls.crt and tls.key: plain HTTP only"
    exit 0
fi
# It ends up in a config line: a host name, an IP or [IPv6], and a port.
case $public_host in
    '' | *[!A-Za-z0-9.:\[\]-]*) log "NGINX_PUBLIC_HOST='$public_host' is not a host[:port]"; exit 1 ;;
esac

mkdir -p "$(dirname "$conf")"
cat >"$conf" <<EOF
# Written by $0 at start: $certs holds a certificate.
listen $port ssl http2;
ssl_certificate $certs/tls.crt;
ssl_certificate_key $certs/tls.key;
# Mozilla's "intermediate" profile: TLS 1.2 and 1.3, forward-secret AEAD ciphers only.
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;
ssl_session_cache shared:TLS:10m;
ssl_session_timeout 1d;
ssl_session_tickets off;
# A day, while you try it; a year (31536000) once HTTPS is there to stay.
add_header Strict-Transport-Security "max-age=86400" always;
# Plain HTTP goes to HTTPS, except /healthz, which container healthchecks fetch over plain HTTP.
set \$https_redirect \$scheme;
if (\$uri = /healthz) {
    set \$https_redirect no;
}
if (\$https_redirect = http) {
    return 308 https://$public_host\$request_uri;
}
EOF
log "certificate found: HTTPS on $port, plain HTTP redirects to https://$public_host"
