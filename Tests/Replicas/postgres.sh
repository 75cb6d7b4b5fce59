#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the replica tests.
#
#   bash Tests/Replicas/postgres.sh start DIR   # prints the store URL (postgres://...)
#   bash Tests/Replicas/postgres.sh stop DIR    # stops it and removes DIR
#   bash Tests/Replicas/postgres.sh pause DIR / resume DIR   # stop and start the same data
#
# Debian's postgresql (15) refuses to run as root: as root the cluster runs as the
# `postgres` user. Trust authentication on 127.0.0.1 only, a database `ssogate` owned by
# a role `ssogate`.
set -euo pipefail
cmd=${1:?start|stop|pause|resume}; dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/initdb" ] || { echo "postgres.sh: PostgreSQL server not installed (apt-get install postgresql)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg() { as_owner "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" "$@" >/dev/null; }
case $cmd in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1
    echo "$port" > "$dir/port"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/port"
    pg -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start
    psql -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE ROLE ssogate LOGIN PASSWORD 'ssogate-test'" -c "CREATE DATABASE ssogate OWNER ssogate" >/dev/null
    echo "postgres://ssogate:ssogate-test@127.0.0.1:$port/ssogate"
    ;;
  pause) pg stop -m fast ;;
  resume) pg -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1" start ;;
  stop)
    [ -d "$dir/data" ] && pg stop -m fast || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop|pause|resume DIR" >&2; exit 2 ;;
esac
