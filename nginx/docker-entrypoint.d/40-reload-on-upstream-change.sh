#!/bin/sh
# Docker only: re-resolve the app's service name and reload nginx when its replicas change.
#
# Why: nginx resolves `server web:8000;` (default.conf.template) once, when it loads its config.
# After `docker compose up --scale web=3`, or when a replica is recreated with a new address, the
# running nginx would keep sending requests to the old set. nginx >= 1.27.3 can re-resolve by
# itself (`server ... resolve;` with a `resolver`), but the host nginx the tests run (Debian
# bookworm's 1.22) cannot, and the other 1.22 way, a variable in proxy_pass, gives up upstream
# keepalive (measured -22-27% throughput). So the upstream block stays as it is and this script
# polls Docker's DNS instead: when the set of addresses for the name changes, `nginx -s reload`
# re-reads the config, resolving it anew; old workers finish their requests first (graceful).
#   https://nginx.org/en/docs/control.html#reconfiguration
#
# docker-compose.yml mounts this one file into the image's /docker-entrypoint.d/ (not the whole
# folder, which would hide the image's own scripts). The image's entrypoint runs each executable
# *.sh there before it execs nginx, so the loop is started in the background and the script returns.
#
# Settings (environment): WEB_UPSTREAM (host:port, as for the template),
# UPSTREAM_RECHECK_SECONDS (poll interval, default 2).
set -eu

upstream_host=${WEB_UPSTREAM%:*}
interval=${UPSTREAM_RECHECK_SECONDS:-2}

log() {
    echo "$0: $*" >&2
}

# The name's addresses, one per line, sorted: Docker's DNS rotates their order between answers.
addresses() {
    getent hosts "$upstream_host" | awk '{ print $1 }' | sort
}

watch_upstream() {
    while sleep "$interval"; do
        current=$(addresses || true)
        # No address at all (every replica gone at once, or a DNS hiccup): a reload would fail
        # with "host not found in upstream"; keep the current config and look again.
        if [ -z "$current" ] || [ "$current" = "$known" ]; then
            continue
        fi
        # `nginx -s reload` parses the config first; if that fails (nginx not started yet, a name
        # that vanished meanwhile), `known` stays as it was and the next round tries again.
        if nginx -s reload; then
            # shellcheck disable=SC2086 # unquoted on purpose: the addresses, one line
            log "$upstream_host changed, reloaded nginx:" $current
            known=$current
        else
            log "$upstream_host changed but nginx -s reload failed; retrying"
        fi
    done
}

# The set nginx is about to start with, taken now, before nginx resolves the name itself.
known=$(addresses || true)
# shellcheck disable=SC2086 # unquoted on purpose: the addresses, one line
log "watching $upstream_host every ${interval}s:" $known
# Detached from the entrypoint's stdin; its output goes to the container log like nginx's own.
watch_upstream </dev/null &
