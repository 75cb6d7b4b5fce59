#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the replica tests.
#
#   bash Tests/Replicas/postgres.sh start DIR   # prints the store URL (postgres://...)
#   bash Tests/Replicas/postgres.sh stop DIR    # stops it and removes DIR
#   bash Tests/Replicas/postgres.sh pause DIR / resume DIR   # stop and start the same data
#
# Debian's postgresql (15) refuses to run as root: as root the cluster runs as the
# `postgres` user. A database `ssogate` owned by a role `ssogate`, reached over TLS only
# (hostssl; a plain connection is refused): DIR/ca.crt is the throwaway CA that signed the
# server's certificate (CN localhost, SANs localhost and 127.0.0.1), for sslmode=verify-full.
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
    (
      cd "$dir"
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ssogate test CA" -keyout ca.key -out ca.crt 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
      chmod 600 server.key; chmod 644 ca.crt
      [ "$(id -u)" = 0 ] && chown postgres server.key server.crt
    )
    # Local (socket) connections for the set-up below; TCP only over TLS.
    printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n' > "$dir/data/pg_hba.conf"
    printf "ssl = on\nssl_cert_file = '%s/server.crt'\nssl_key_file = '%s/server.key'\n" "$dir" "$dir" >> "$dir/data/postgresql.conf"
    pg -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start
    psql -q -h "$dir" -p "$port" -U postgres -c "CREATE ROLE ssogate LOGIN PASSWORD 'ssogate-test'" -c "CREATE DATABASE ssogate OWNER ssogate" \
      -c "CREATE DATABASE ssogate_upgrades OWNER ssogate" >/dev/null
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
