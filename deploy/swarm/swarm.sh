#!/bin/sh
# The Swarm deploy's commands, behind `make secrets|deploy|deploy-status|deploy-down`:
#   swarm.sh secrets   create the stack's Docker secrets with random values (existing ones stay)
#   swarm.sh deploy    build the app's image, deploy or update the stack, wait for the rollout
#   swarm.sh status    the stack's services and running tasks
#   swarm.sh down      remove the stack; its data volume and secrets stay
# Settings (environment): STACK_NAME (counter-swarm: not Compose's project name `counter`, whose
# volume counter_db-data a stack `counter` would take over), HTTP_PORT (80), WEB_IMAGE (default:
# build web/ and tag it with its image ID, so a re-run with unchanged code changes nothing),
# RESOLVE_IMAGE (never) and DEPLOY_TIMEOUT (300 s).
set -eu
cd "$(dirname "$0")/../.."

STACK_NAME=${STACK_NAME:-counter-swarm}
HTTP_PORT=${HTTP_PORT:-80}
export STACK_NAME HTTP_PORT
SECRETS="secret_key db_password mysql_root_password"

log() {
    echo "swarm: $*" >&2
}

ensure_swarm() {
    if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
        log "this engine is in no swarm: making it a single-node one (docker swarm init)"
        docker swarm init >/dev/null
    fi
}

secrets() {
    ensure_swarm
    for name in $SECRETS; do
        if docker secret inspect "${STACK_NAME}_$name" >/dev/null 2>&1; then
            log "${STACK_NAME}_$name exists: kept"
        else
            # Straight from the generator into the swarm's store: no file, no argument, no log.
            python3 -c 'import secrets; print(secrets.token_urlsafe(32), end="")' \
                | docker secret create "${STACK_NAME}_$name" - >/dev/null
            log "${STACK_NAME}_$name created (random)"
        fi
    done
}

# The first 12 hex digits of the SHA-256 of the files, concatenated.
digest() {
    cat "$@" | sha256sum | cut -c1-12
}

deploy() {
    ensure_swarm
    for name in $SECRETS; do
        docker secret inspect "${STACK_NAME}_$name" >/dev/null 2>&1 \
            || { log "secret ${STACK_NAME}_$name is missing: create it (make secrets)"; exit 1; }
    done
    if [ -z "${WEB_IMAGE:-}" ]; then
        log "building the app's image from web/ (target runtime)"
        id=$(docker build --quiet --target runtime web)
        WEB_IMAGE=counter-web:$(echo "${id#sha256:}" | cut -c1-12)
        docker tag "$id" "$WEB_IMAGE"
    fi
    DB_CONFIG_DIGEST=$(digest db/conf.d/counter.cnf)
    NGINX_CONFIG_DIGEST=$(digest nginx/nginx.conf nginx/templates/default.conf.template \
        nginx/docker-entrypoint.d/40-reload-on-upstream-change.sh)
    export WEB_IMAGE DB_CONFIG_DIGEST NGINX_CONFIG_DIGEST
    log "deploying stack $STACK_NAME with $WEB_IMAGE, nginx on port $HTTP_PORT"
    # An image built here exists on this node only: no digest to record. With a registry and
    # several nodes, RESOLVE_IMAGE=always pins every node to one digest (README).
    docker stack deploy --prune --resolve-image "${RESOLVE_IMAGE:-never}" \
        -c deploy/swarm/stack.yml "$STACK_NAME"
    wait_converged
}

# Until every service of the stack runs all its replicas with no update in flight, three checks in
# a row (a fresh spec change has no update status for a moment). An update that fails is rolled
# back (update_config); then this fails too, as on a paused update or a timeout.
wait_converged() {
    deadline=$(($(date +%s) + ${DEPLOY_TIMEOUT:-300}))
    stable=0
    while [ "$stable" -lt 3 ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { log "not converged in time"; status; exit 1; }
        sleep 2
        stable=$((stable + 1)) rolled_back=""
        for service in $(docker stack services --quiet "$STACK_NAME"); do
            case $(update_state "$service") in
                paused* | rollback_paused*) log "$(update_state "$service")"; exit 1 ;;
                rollback_completed*) rolled_back="$rolled_back $service" ;;
                updating* | rollback_started*) stable=0 ;;
            esac
            replicas=$(docker service ls --filter "id=$service" --format '{{.Replicas}}')
            [ "${replicas%%/*}" = "${replicas#*/}" ] || stable=0
        done
    done
    for service in $rolled_back; do
        log "$(update_state "$service")"
    done
    if [ -n "$rolled_back" ]; then
        log "the deploy failed and was rolled back: the previous version runs"
        exit 1
    fi
    log "stack $STACK_NAME is up: http://localhost:$HTTP_PORT"
}

# "<state> <service>: <message>" of the service's last update ("<service>: " if none yet).
update_state() {
    format='{{with .UpdateStatus}}{{.State}} {{end}}{{.Spec.Name}}'
    docker service inspect "$1" --format "$format: {{with .UpdateStatus}}{{.Message}}{{end}}"
}

status() {
    docker stack services "$STACK_NAME"
    docker stack ps --filter desired-state=running "$STACK_NAME"
}

down() {
    docker stack rm "$STACK_NAME"
    log "kept: volume ${STACK_NAME}_db-data and the ${STACK_NAME}_* secrets"
}

case ${1:-} in
    secrets | deploy | status | down) "$1" ;;
    *) echo "usage: $0 secrets|deploy|status|down" >&2; exit 2 ;;
esac
