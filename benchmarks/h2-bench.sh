#!/usr/bin/env bash
# HTTP/2 side by side: ssogate (h2c) vs. an nginx h2c reverse proxy, same upstream.
#
#   bash benchmarks/h2-bench.sh [--rounds N] [--duration S] [--binary PATH]
#
# Starts on 127.0.0.1, inside one mktemp folder:
#   upstream  nginx serving /1k (1 KiB), HTTP/1.1 (what both proxies speak upstream)
#   nginx     nginx `listen ... http2` (h2c, prior knowledge), `sendfile off`, proxying to
#             the upstream over a keep-alive pool
#   ssogate   `ssogate serve` (h2c with prior knowledge is on by default)
# and loads each with `h2load -c8 -m8` (8 connections, 8 streams each), round by round,
# interleaved, so that drift of the machine hits both alike. Servers run on CPU 0, h2load
# on CPU 1. Only the ratios from one run mean anything (benchmarks/README.md).
set -euo pipefail

ROUNDS=3
DURATION=10
BINARY=".build/release/ssogate"
usage() { echo "usage: bash benchmarks/h2-bench.sh [--rounds N] [--duration S] [--binary PATH]" >&2; exit 2; }
while (($#)); do
    case "$1" in
        --rounds)   [[ $# -ge 2 ]] || usage; ROUNDS="$2"; shift 2 ;;
        --duration) [[ $# -ge 2 ]] || usage; DURATION="$2"; shift 2 ;;
        --binary)   [[ $# -ge 2 ]] || usage; BINARY="$2"; shift 2 ;;
        *)          usage ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "--rounds must be 1..99" >&2; exit 2; }
[[ "$DURATION" =~ ^[1-9][0-9]*$ && "$DURATION" -le 600 ]] || { echo "--duration must be 1..600" >&2; exit 2; }
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -x "$BINARY" && "$BINARY" != /* && -x "$REPO_ROOT/$BINARY" ]]; then BINARY="$REPO_ROOT/$BINARY"; fi
[[ -x "$BINARY" ]] || { echo "binary not found: $BINARY (swift build -c release)" >&2; exit 2; }
BINARY="$(realpath "$BINARY")"
cd "$REPO_ROOT"

declare -a PIDS=()
WORK=""
cleanup() {
    local rc=$? i
    trap - EXIT
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        local kids; kids=$(pgrep -P "${PIDS[i]}" 2>/dev/null || true)
        kill -TERM "${PIDS[i]}" $kids 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    [[ -n "$WORK" && -d "$WORK" ]] && rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p benchmarks/out
OUT_FILE="benchmarks/out/h2-bench-$(date -u +%Y%m%dT%H%M%SZ).md"
exec > >(exec tee -a "$OUT_FILE") 2>&1
log() { printf '%s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*"; exit 1; }

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
    # Installing nginx must not start the system service on :80.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
wait_up() {   # wait_up PID ARGS...: until `curl ARGS` answers 200
    local pid=$1 i; shift
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || die "a server exited during start-up"
        [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" || true) == 200 ]] && return 0
        sleep 0.1
    done
    die "no 200 from $*"
}
cpu_ticks() {   # utime+stime of PID in clock ticks
    local stat; stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }; read -r -a f <<<"$stat"; echo $((f[11] + f[12]))
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

WORK=$(mktemp -d /tmp/h2-bench.XXXXXX)
mkdir -p "$WORK/www" "$WORK/upstream" "$WORK/nginx" "$WORK/ssogate"
head -c 1024 /dev/urandom > "$WORK/www/1k"
chmod 755 "$WORK" "$WORK/www"; chmod 644 "$WORK/www/1k"
PORT_UP=$(free_port); PORT_NGX=$(free_port); PORT_SSO=$(free_port)

nginx_conf() {   # nginx_conf DIR SERVER-BLOCK...
    local dir=$1; shift
    cat <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f; uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
    keepalive_requests 1000000;
    $*
}
EOF
}
nginx_conf "$WORK/upstream" "access_log off; server { listen 127.0.0.1:$PORT_UP; root $WORK/www; location / { } }" > "$WORK/upstream/nginx.conf"
nginx_conf "$WORK/nginx" "access_log $WORK/nginx/access.log; sendfile off;
    upstream backend { server 127.0.0.1:$PORT_UP; keepalive 64; keepalive_requests 1000000; }
    server { listen 127.0.0.1:$PORT_NGX http2;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;
                     proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto \$scheme;
                     proxy_set_header X-Forwarded-Host \$host; } }" > "$WORK/nginx/nginx.conf"
for name in upstream nginx; do
    taskset -c 0 nginx -p "$WORK/$name" -e "$WORK/$name/error.log" -c "$WORK/$name/nginx.conf" &
    PIDS+=($!)
done
UP_MASTER=${PIDS[0]}; NGX_MASTER=${PIDS[1]}
wait_up "$UP_MASTER" "http://127.0.0.1:$PORT_UP/1k"
wait_up "$NGX_MASTER" --http2-prior-knowledge "http://127.0.0.1:$PORT_NGX/1k"

cat > "$WORK/ssogate/config.yaml" <<EOF
listen: "127.0.0.1:$PORT_SSO"
workers: 1
public_url: "http://127.0.0.1:$PORT_SSO"
upstream: "http://127.0.0.1:$PORT_UP"
session:
  secrets: ["0123456789abcdef0123456789abcdef0123"]
EOF
taskset -c 0 "$BINARY" serve --config "$WORK/ssogate/config.yaml" > "$WORK/ssogate/access.log" 2>&1 &
SSO_PID=$!; PIDS+=("$SSO_PID")
wait_up "$SSO_PID" --http2-prior-knowledge "http://127.0.0.1:$PORT_SSO/1k"
NGX_WORKER=$(pgrep -P "$NGX_MASTER" | head -n1)

declare -A URL=([nginx]="http://127.0.0.1:$PORT_NGX/1k" [ssogate]="http://127.0.0.1:$PORT_SSO/1k")
declare -A MEASURED=([nginx]="$NGX_WORKER" [ssogate]="$SSO_PID")
declare -A RPS=() CPU=()

log "# HTTP/2 benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log ""
log "- $(nginx -v 2>&1), $(h2load --version 2>&1 | head -n1), ssogate $("$BINARY" --version 2>/dev/null || echo '?')"
log "- h2load -c8 -m8 -D${DURATION}s on CPU 1; upstream nginx, nginx proxy (worker_processes 1) and ssogate (workers: 1) on CPU 0; both proxies log each request"
log ""
log "| round | target | req/s | 2xx | proxy CPU µs/req |"
log "|---|---|---|---|---|"
run() {   # run TARGET SECONDS: "rps ok cpu_us"
    local t=$1 secs=$2 out before after
    before=$(cpu_ticks "${MEASURED[$t]}")
    out=$(taskset -c 1 h2load -c8 -m8 -D "$secs" "${URL[$t]}" 2>&1 || true)
    after=$(cpu_ticks "${MEASURED[$t]}")
    local rps ok done_
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    done_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
    [[ -n "$rps" && -n "$ok" ]] || { echo "h2load output not understood: $out" >&2; echo "0 0 0"; return; }
    echo "$rps $ok $(awk -v d=$((after - before)) -v n="${done_:-1}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", n ? d * 1e6 / hz / n : 0 }')"
}
for t in nginx ssogate; do run "$t" 2 >/dev/null; done   # warm-up, not counted
for ((r = 1; r <= ROUNDS; r++)); do
    order=(nginx ssogate); ((r % 2 == 0)) && order=(ssogate nginx)
    for t in "${order[@]}"; do
        read -r rps ok cpu < <(run "$t" "$DURATION")
        RPS[$t]+="$rps "; CPU[$t]+="$cpu "
        log "| $r | $t | ${rps%.*} | $ok | $cpu |"
    done
done
log ""
NGX_MED=$(median ${RPS[nginx]}); SSO_MED=$(median ${RPS[ssogate]})
log "| median | req/s | proxy CPU µs/req |"
log "|---|---|---|"
log "| nginx (h2c proxy) | ${NGX_MED%.*} | $(median ${CPU[nginx]}) |"
log "| ssogate (h2c) | ${SSO_MED%.*} | $(median ${CPU[ssogate]}) |"
log ""
log "ratio ssogate/nginx: $(awk -v a="$SSO_MED" -v b="$NGX_MED" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (must ≥ 0.6)"
log "results: $OUT_FILE"
