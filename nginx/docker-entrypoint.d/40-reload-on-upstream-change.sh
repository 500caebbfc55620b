#!/bin/sh
# Docker only: re-resolve the app's service name and reload nginx when its replicas change.
# nginx resolves the upstream name only when it loads its config (why: nginx/README.md).
# Compose mounts this file into /docker-entrypoint.d/; the image runs it before nginx starts.
# Settings: WEB_UPSTREAM (host:port), UPSTREAM_RECHECK_SECONDS (poll interval, default 2).
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
        # No address (all replicas gone, a DNS hiccup) would fail the reload: look again later.
        if [ -z "$current" ] || [ "$current" = "$known" ]; then
            continue
        fi
        # A failed reload (nginx not up yet, the name gone meanwhile) is tried again next round.
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
