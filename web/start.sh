#!/bin/sh
# The web server's start command (the image's CMD, `make local-run`): check, migrate, serve.
# Migrations run here, before the server exists, under a MySQL named lock (migrations/env.py), so
# replicas starting together take turns; never in before_serving.
set -eu
cd "$(dirname "$0")"

python -m counter.preflight
alembic upgrade head

set -- python -m hypercorn --config file:hypercorn_conf.py manage:app
drain=${WEB_DRAIN_SECONDS:-0}
case $drain in
    *[!0-9]* | '') echo "counter: configuration error: WEB_DRAIN_SECONDS='$drain' is invalid: expected whole seconds" >&2; exit 1 ;;
esac
if [ "$drain" -eq 0 ]; then
    exec "$@"
fi
# Swarm has no preStop hook: on SIGTERM keep serving for $drain s while the proxy drops this
# replica (its DNS re-check), then pass the signal on; exit with the server's own status.
"$@" &
server=$!
trap 'sleep "$drain"; kill -TERM "$server"' TERM INT
status=0
wait "$server" || status=$?
# The trap interrupts `wait` while the server drains: wait again for its own exit status.
while kill -0 "$server" 2>/dev/null; do
    wait "$server" && status=0 || status=$?
done
exit "$status"
