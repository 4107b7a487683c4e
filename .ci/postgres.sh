#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: on loopback, as an unprivileged
# user, in a temporary directory, stopped and removed by `stop`.
#
#   eval "$(.ci/postgres.sh start)"   # prints: export SPINDLE_TEST_POSTGRES_URL=...
#   .ci/postgres.sh restart            # stop and start it again (same data)
#   .ci/postgres.sh stop
#
# `start` installs Debian's postgresql when no server is found and it may
# (running as root with apt-get, or CI=true), then runs initdb and pg_ctl as
# the user `postgres` (or the current user when not root; PostgreSQL refuses
# to run as root). The state lives in $SPINDLE_PG_DIR (default
# ${TMPDIR:-/tmp}/spindle-ci-pg), the port is $SPINDLE_PG_PORT (default 54329).
set -euo pipefail

DIR=${SPINDLE_PG_DIR:-${TMPDIR:-/tmp}/spindle-ci-pg}
PORT=${SPINDLE_PG_PORT:-54329}

log() { printf '%s\n' "$*" >&2; }

find_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then
        printf '%s\n' "$found"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_server() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "postgres: no PostgreSQL server found, and cannot install one (needs root and apt-get);"
        log "          install Debian's 'postgresql' package, or set SPINDLE_TEST_POSTGRES_URL"
        return 1
    fi
    log "postgres: installing Debian's postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    if ! bin=$(find_bin); then
        install_server
        bin=$(find_bin)
    fi
    OWNER=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        OWNER=postgres
        id "$OWNER" >/dev/null 2>&1 || useradd --system --no-create-home "$OWNER"
    fi
    stop_quietly
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chown "$OWNER" "$DIR"
    as_owner "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; return 1; }
    as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" \
        start >&2 || { cat "$DIR/server.log" >&2; return 1; }
    printf '%s\n' "$bin" >"$DIR/bin"
    printf '%s\n' "$OWNER" >"$DIR/owner"
    log "postgres: a throwaway cluster on 127.0.0.1:$PORT ($DIR)"
    printf 'export SPINDLE_TEST_POSTGRES_URL=%q\n' "postgresql://postgres@127.0.0.1:$PORT/postgres"
}

stop_quietly() {
    if [ -f "$DIR/bin" ] && [ -d "$DIR/data" ]; then
        OWNER=$(cat "$DIR/owner")
        as_owner "$(cat "$DIR/bin")/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

# Stop the running cluster and start it again on the same data (the tests' stand-in
# for a database server restarting under live workers).
restart() {
    if ! { [ -f "$DIR/bin" ] && [ -d "$DIR/data" ]; }; then
        log "postgres: no cluster in $DIR to restart (run: $0 start)"
        return 1
    fi
    OWNER=$(cat "$DIR/owner")
    as_owner "$(cat "$DIR/bin")/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -m fast -w -t 60 \
        restart >&2 || { cat "$DIR/server.log" >&2; return 1; }
}

case "${1:-}" in
    start) start ;;
    restart) restart ;;
    stop) stop_quietly; rm -rf "$DIR" ;;
    *) log "usage: $0 start|restart|stop"; exit 2 ;;
esac
