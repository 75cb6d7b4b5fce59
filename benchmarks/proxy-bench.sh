#!/usr/bin/env bash
# Side-by-side benchmark: ssogate vs. an nginx reverse proxy vs. the upstream itself.
#
#   bash benchmarks/proxy-bench.sh [--rounds N] [--duration S] [--binary PATH]
#
# Starts, all on 127.0.0.1 and all inside one mktemp folder:
#   upstream  nginx serving /1k (1 KiB) and /256m (256 MiB), static files
#   nginx     nginx reverse proxy in front of the upstream (keepalive pool, no buffering)
#   ssogate   `ssogate serve` in front of the same upstream
# then measures small-request throughput/latency with wrk and large-body streaming
# (throughput and RSS growth) with curl, interleaving the targets round by round so
# that drift of the machine (thermal, noisy neighbours, a build elsewhere) hits every
# target alike. Only the ratios from one run mean anything; see benchmarks/README.md.
set -euo pipefail

# ---------------------------------------------------------------- arguments
ROUNDS=3
DURATION=10
BINARY=".build/release/ssogate"
WARMUP=2            # seconds of wrk per target before round 1, not counted

usage() {
    echo "usage: bash benchmarks/proxy-bench.sh [--rounds N] [--duration S] [--binary PATH]" >&2
    exit 2
}
ORIGINAL_ARGS=("$@")
while (($#)); do
    case "$1" in
        --rounds)   [[ $# -ge 2 ]] || usage; ROUNDS="$2"; shift 2 ;;
        --duration) [[ $# -ge 2 ]] || usage; DURATION="$2"; shift 2 ;;
        --binary)   [[ $# -ge 2 ]] || usage; BINARY="$2"; shift 2 ;;
        -h|--help)  usage ;;
        *)          echo "unknown argument: $1" >&2; usage ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$ROUNDS" -le 100 ]] || { echo "--rounds must be 1..100" >&2; exit 2; }
[[ "$DURATION" =~ ^[1-9][0-9]*$ && "$DURATION" -le 600 ]] || { echo "--duration must be 1..600 seconds" >&2; exit 2; }
((WARMUP > DURATION)) && WARMUP=$DURATION

# The binary is resolved against the caller's directory (else the repo root), then we
# work from the repo root so that benchmarks/out/ is found from any directory.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -x "$BINARY" && "$BINARY" != /* && -x "$REPO_ROOT/$BINARY" ]]; then BINARY="$REPO_ROOT/$BINARY"; fi
[[ -x "$BINARY" ]] || { echo "binary not found or not executable: $BINARY (build it with: swift build -c release)" >&2; exit 2; }
BINARY="$(realpath "$BINARY")"
cd "$REPO_ROOT"

# ---------------------------------------------------------------- processes and cleanup
# Every process we start is recorded here; the EXIT trap stops exactly these, by pid.
declare -a STARTED_PIDS=()
WORK=""
TEE_PID=""
POLICY_RC_CREATED=0

stop_pid() {   # stop_pid PID: TERM, wait up to ~10 s, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "pid $pid did not stop within 10 s of SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid i
    # A second Ctrl-C must not cut the clean-up short.
    trap - EXIT
    trap '' INT TERM
    # Stop in reverse start order: samplers first, then the proxies, the upstream last.
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${STARTED_PIDS[i]}
        # nginx workers are children of the master, not of this shell: remember them
        # before the master goes, in case the master dies without taking them along.
        local kids
        kids=$(pgrep -P "$pid" 2>/dev/null || true)
        stop_pid "$pid"
        for k in $kids; do stop_pid "$k"; done
        wait "$pid" 2>/dev/null || true
    done
    if ((POLICY_RC_CREATED)); then rm -f /usr/sbin/policy-rc.d; fi
    # The temp folder holds a 256 MiB file and the access logs: never leave it behind,
    # unless PROXY_BENCH_KEEP=1 asks to keep the logs and configs for a post-mortem.
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "${PROXY_BENCH_KEEP:-0}" == 1 ]]; then
            rm -f -- "$WORK/www/256m"
            echo "kept $WORK (PROXY_BENCH_KEEP=1)"
        else
            rm -rf -- "$WORK"
        fi
    fi
    if [[ -n "$TEE_PID" ]]; then
        exec 1>&- 2>&-      # let tee see EOF and flush the copy in benchmarks/out/
        wait "$TEE_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
# Ctrl-C / kill: exit with the usual code, which runs the EXIT trap above.
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------- output
mkdir -p benchmarks/out
OUT_FILE="benchmarks/out/proxy-bench-$(date -u +%Y%m%dT%H%M%SZ).md"
# Everything goes to stdout and, through tee, to the file. tee ignores INT/TERM so that
# a Ctrl-C does not kill it before cleanup has printed its last lines.
exec > >(trap '' INT TERM; exec tee -a "$OUT_FILE") 2>&1
TEE_PID=$!

log() { printf '%s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*"; exit 1; }

# ---------------------------------------------------------------- 1. install what is missing
# Only apt-get when something is missing, and `apt-get update` at most once.
install_missing() {
    local -a missing=()
    command -v nginx >/dev/null 2>&1 || missing+=(nginx)
    command -v wrk   >/dev/null 2>&1 || missing+=(wrk)
    command -v curl  >/dev/null 2>&1 || missing+=(curl)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    command -v pgrep >/dev/null 2>&1 || missing+=(procps)
    ((${#missing[@]} == 0)) && return 0
    log "installing: ${missing[*]}"
    # Installing nginx would start the system nginx service on :80 on a machine without
    # a policy-rc.d; forbid that for the duration of the install (removed on exit).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    local -a pkgs=()
    for p in "${missing[@]}"; do
        if [[ $p == nginx ]]; then
            # nginx-light is enough (static files + proxy); plain `nginx` where it is not packaged.
            if apt-cache show nginx-light >/dev/null 2>&1; then pkgs+=(nginx-light); else pkgs+=(nginx); fi
        else
            pkgs+=("$p")
        fi
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    if ((POLICY_RC_CREATED)); then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
    command -v nginx >/dev/null && command -v wrk >/dev/null || die "install failed"
}
install_missing

# ---------------------------------------------------------------- helpers
# A free TCP port on 127.0.0.1: nothing answers a connect, and not handed out before.
declare -A PORTS_TAKEN=()
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        [[ -n "${PORTS_TAKEN[$p]:-}" ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            PORTS_TAKEN[$p]=1
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http NAME PID URL: until URL answers 200 (at most 30 s), failing early if PID died.
wait_http() {
    local name=$1 pid=$2 url=$3 i code
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) exited during start-up"
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    die "$name did not answer 200 on $url within 30 s (last status: ${code:-none})"
}

# VmRSS of PID in KiB (pure bash: this runs every 50 ms while sampling).
rss_kib() {
    local k v rest
    while read -r k v rest; do
        if [[ $k == VmRSS: ]]; then echo "$v"; return 0; fi
    done < "/proc/$1/status"
    echo 0
}

# utime+stime of PID (all its threads) in clock ticks.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return 0; }   # process gone (Ctrl-C)
    stat=${stat##*) }          # drop "pid (comm) " — comm may contain spaces
    read -r -a f <<<"$stat"
    # after the comm, field 14 (utime) is index 11 and field 15 (stime) index 12
    echo $((f[11] + f[12]))
}
CLK_TCK=$(getconf CLK_TCK)

# median of the numbers given as arguments ("-" when there are none)
median() {
    (($#)) || { echo "-"; return; }
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) printf "%.2f", a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# ratio A/B to 2 decimals ("-" when either is missing or B is zero)
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
# wrk prints durations as 812.00us, 1.23ms, 1.02s, 1.50m: to milliseconds.
to_ms() {
    awk -v t="$1" 'BEGIN {
        if (match(t, /^[0-9.]+/) == 0) { print "-"; exit }
        v = substr(t, 1, RLENGTH); u = substr(t, RLENGTH + 1)
        if (u == "us") m = v / 1000; else if (u == "ms") m = v; else if (u == "s") m = v * 1000;
        else if (u == "m") m = v * 60000; else if (u == "h") m = v * 3600000; else { print "-"; exit }
        printf "%.3f", m }'
}

# ---------------------------------------------------------------- 8. machine facts
WORK=$(mktemp -d /tmp/proxy-bench.XXXXXX)
IS_DEBUG=0
[[ "$BINARY" == */debug/* ]] && IS_DEBUG=1

log "# ssogate proxy benchmark"
log ""
log "- command: \`bash benchmarks/proxy-bench.sh${ORIGINAL_ARGS[*]:+ ${ORIGINAL_ARGS[*]}}\` (rounds=$ROUNDS, duration=${DURATION}s, warm-up=${WARMUP}s per target)"
log "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
log "- machine: nproc=$(nproc), CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%d MiB RAM", $2 / 1024 }' /proc/meminfo)"
log "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "- $(nginx -v 2>&1)"
log "- $(wrk -v 2>&1 | head -n1 || true)"
log "- $(curl --version | head -n1 | cut -d' ' -f1-2)"
log "- ssogate: $BINARY ($("$BINARY" --version 2>/dev/null || echo '?'), $(stat -c '%s bytes, built %y' "$BINARY" | cut -d. -f1)); repo at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([[ -n "$(git status --porcelain 2>/dev/null)" ]] && echo ' + uncommitted changes')"
if ((IS_DEBUG)); then
    log ""
    log "**WARNING: debug build. These numbers say nothing about ssogate's performance; only that the harness works.**"
fi
log ""
log "## Set-up"
log ""
log "- Pinning: the servers under test (upstream nginx, nginx proxy with worker_processes 1, ssogate) run on CPU 0 (\`taskset -c 0\`); the load generators (wrk -t1 -c64, curl) run on CPU 1. The upstream shares CPU 0 with whichever proxy is measured, alike for both; \"direct\" has CPU 0 to itself."
log "- ssogate runs with \`workers: 1\` (one SwiftNIO event loop), as nginx runs \`worker_processes 1\`, both pinned to CPU 0."
log "- Both proxies write one access-log line per request to a file (nginx: access_log; ssogate: stdout redirected to a file)."
log "- nginx proxy: upstream keepalive 64, proxy_http_version 1.1, Connection \"\", proxy_buffering off with proxy_buffer_size 64k (SwiftNIO reads up to 64 KiB; nginx's 4 KiB default would halve its streaming rate), sets X-Forwarded-For/Proto/Host like ssogate does; keepalive_requests raised on every hop so no side recycles connections mid-run."
log "- temp folder: $WORK"
log ""

# ---------------------------------------------------------------- 2. upstream nginx
PORT_UP=$(free_port)
PORT_NGX=$(free_port)
PORT_SSO=$(free_port)

mkdir -p "$WORK/www" "$WORK/upstream" "$WORK/nginx" "$WORK/ssogate"
head -c 1024 /dev/urandom > "$WORK/www/1k"
head -c $((256 * 1024 * 1024)) /dev/urandom > "$WORK/www/256m"
SIZE_256M=$((256 * 1024 * 1024))
# nginx workers run as an unprivileged user (www-data/nobody) and mktemp -d is 0700:
# open the served files up (random bytes, nothing secret).
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/1k" "$WORK/www/256m"

# Settings both nginx instances share. Temp paths point into the prefix so nothing is
# written to /var/lib/nginx; keepalive_requests is raised because its default (1000)
# would make nginx close wrk's connections mid-run, which ssogate does not do.
nginx_common() {   # nginx_common DIR
    cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {   # nginx_http_common DIR
    cat <<EOF
    default_type application/octet-stream;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
EOF
}

cat > "$WORK/upstream/nginx.conf" <<EOF
$(nginx_common "$WORK/upstream")
http {
$(nginx_http_common "$WORK/upstream")
    access_log off;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$PORT_UP;
        root $WORK/www;
        location / { }
    }
}
EOF

# start_nginx NAME DIR: daemon off in the background; $! is the master (taskset execs).
start_nginx() {
    local name=$1 dir=$2
    nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || die "$name: nginx -t failed"
    taskset -c 0 nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
    STARTED_PIDS+=($!)
}
start_nginx upstream "$WORK/upstream"
UP_MASTER=${STARTED_PIDS[-1]}
wait_http upstream "$UP_MASTER" "http://127.0.0.1:$PORT_UP/1k"

# ---------------------------------------------------------------- 3. nginx proxy
cat > "$WORK/nginx/nginx.conf" <<EOF
$(nginx_common "$WORK/nginx")
http {
$(nginx_http_common "$WORK/nginx")
    access_log $WORK/nginx/access.log;
    upstream backend {
        server 127.0.0.1:$PORT_UP;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT_NGX;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Stream like ssogate does instead of spooling the upstream's answer.
            proxy_buffering off;
            # With buffering off nginx relays through one proxy_buffer_size buffer, 4 KiB
            # by default, which halves its streaming rate here; SwiftNIO reads up to
            # 64 KiB at a time, so give nginx the same (proxy_buffers/busy_buffers only
            # to satisfy nginx -t; they are unused with buffering off).
            proxy_buffer_size 64k;
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 64k;
            # ssogate rewrites these on every request: make nginx do the same work.
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
        }
    }
}
EOF
start_nginx "nginx proxy" "$WORK/nginx"
NGX_MASTER=${STARTED_PIDS[-1]}
wait_http "nginx proxy" "$NGX_MASTER" "http://127.0.0.1:$PORT_NGX/1k"

# ---------------------------------------------------------------- 4. ssogate
# workers: 1 -- one event loop, as nginx runs worker_processes 1 on the same pinned core
# (NIO would otherwise start one loop per online core and its threads would share CPU 0).
cat > "$WORK/ssogate/config.yaml" <<EOF
listen: "127.0.0.1:$PORT_SSO"
workers: 1
public_url: "http://127.0.0.1:$PORT_SSO"
upstream: "http://127.0.0.1:$PORT_UP"
session:
  secrets: ["0123456789abcdef0123456789abcdef0123"]
EOF
"$BINARY" check --config "$WORK/ssogate/config.yaml" >/dev/null || die "ssogate check rejected the benchmark configuration"
taskset -c 0 "$BINARY" serve --config "$WORK/ssogate/config.yaml" > "$WORK/ssogate/ssogate.log" 2> "$WORK/ssogate/stderr.log" &
SSO_PID=$!
STARTED_PIDS+=("$SSO_PID")
wait_http ssogate "$SSO_PID" "http://127.0.0.1:$PORT_SSO/_ssogate/healthz"

# The process whose memory/CPU we measure: ssogate itself; for nginx, its single worker.
worker_of() {   # worker_of MASTER_PID
    local w
    w=$(pgrep -P "$1" | head -n1 || true)
    [[ -n "$w" ]] || die "no worker process under nginx master $1"
    echo "$w"
}
NGX_WORKER=$(worker_of "$NGX_MASTER")
UP_WORKER=$(worker_of "$UP_MASTER")

log "- ports: upstream 127.0.0.1:$PORT_UP, nginx proxy 127.0.0.1:$PORT_NGX, ssogate 127.0.0.1:$PORT_SSO"
log "- pids: upstream master $UP_MASTER / worker $UP_WORKER, nginx master $NGX_MASTER / worker $NGX_WORKER, ssogate $SSO_PID ($(ls "/proc/$SSO_PID/task" | wc -l) threads)"
log "- affinity: upstream worker $(taskset -cp "$UP_WORKER" | awk '{ print $NF }'), nginx worker $(taskset -cp "$NGX_WORKER" | awk '{ print $NF }'), ssogate $(taskset -cp "$SSO_PID" | awk '{ print $NF }'); load generators 1"
log ""

declare -A URL=(
    [ssogate]="http://127.0.0.1:$PORT_SSO"
    [nginx]="http://127.0.0.1:$PORT_NGX"
    [direct]="http://127.0.0.1:$PORT_UP"
)
declare -A MEASURED_PID=([ssogate]=$SSO_PID [nginx]=$NGX_WORKER [direct]=$UP_WORKER)

# ---------------------------------------------------------------- sanity check
# Same bytes through every target before measuring anything: a proxy that answers fast
# with the wrong body would otherwise "win".
want_1k=$(sha256sum < "$WORK/www/1k" | cut -d' ' -f1)
for t in ssogate nginx direct; do
    got=$(curl -s -m 10 -w '\n%{http_code}' "${URL[$t]}/1k" -o "$WORK/check.$t" | tail -n1)
    [[ $got == 200 ]] || die "$t: GET /1k answered $got"
    [[ $(sha256sum < "$WORK/check.$t" | cut -d' ' -f1) == "$want_1k" ]] || die "$t: /1k body differs from the file"
done
log "Sanity check: /1k answers 200 with the file's exact bytes through ssogate, nginx and direct."
log ""

# ---------------------------------------------------------------- 6. wrk, interleaved
# run_wrk TARGET SECONDS RAWFILE: prints "rps p99_ms non2xx socket_errors cpu_us_per_req"
run_wrk() {
    local target=$1 secs=$2 raw=$3 pid=${MEASURED_PID[$1]} t0 t1
    t0=$(cpu_ticks "$pid")
    # timeout bounds a wedged wrk; -d plus generous slack.
    timeout --foreground --signal=INT --kill-after=5 $((secs + 30)) \
        taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency "${URL[$target]}/1k" > "$raw" 2>&1 || true
    t1=$(cpu_ticks "$pid")
    awk -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
        /^Requests\/sec:/           { rps = $2 }
        /^ +99%/                    { p99 = $2 }
        /requests in/               { total = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/            { gsub(",", ""); sock = "connect=" $4 "/read=" $6 "/write=" $8 "/timeout=" $10 }
        END {
            if (rps == "" || p99 == "") { print "PARSE_ERROR"; exit }
            cpu = (total > 0) ? sprintf("%.1f", ticks * 1000000 / hz / total) : "-"
            printf "%s %s %s %s %s\n", rps, p99, (non2xx == "" ? 0 : non2xx), (sock == "" ? "none" : sock), cpu
        }' "$raw"
}

TARGETS=(ssogate nginx direct)
declare -A RPS=() P99=() CPU=()
WRK_PROBLEMS=()

log "## Small requests: GET /1k, wrk -t1 -c64 -d${DURATION}s"
log ""
log "Warm-up (${WARMUP}s per target, not counted)..."
for t in "${TARGETS[@]}"; do
    res=$(run_wrk "$t" "$WARMUP" "$WORK/wrk-warmup-$t.txt")
    read -r _ _ n2 se _ <<<"$res"
    if [[ $res == PARSE_ERROR || $n2 != 0 || $se != none ]]; then
        WRK_PROBLEMS+=("warm-up $t: $res")
        cp "$WORK/wrk-warmup-$t.txt" "${OUT_FILE%.md}-wrk-warmup-$t.txt"
    fi
done
log ""
log "| round | target | req/s | p99 ms | non-2xx | socket errors | proxy CPU µs/req |"
log "|---|---|---:|---:|---:|---|---:|"
for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${TARGETS[@]}"; do
        raw="$WORK/wrk-r$r-$t.txt"
        res=$(run_wrk "$t" "$DURATION" "$raw")
        if [[ $res == PARSE_ERROR ]]; then
            log "| $r | $t | could not parse wrk output (saved) | | | | |"
            cp "$raw" "${OUT_FILE%.md}-wrk-r$r-$t.txt"
            WRK_PROBLEMS+=("round $r $t: unparsable wrk output")
            continue
        fi
        read -r rps p99raw n2 se cpu <<<"$res"
        p99=$(to_ms "$p99raw")
        RPS[$t]+="$rps "; P99[$t]+="$p99 "; CPU[$t]+="$cpu "
        log "| $r | $t | $rps | $p99 (wrk: $p99raw) | $n2 | $se | $cpu |"
        if [[ $n2 != 0 || $se != none ]]; then
            WRK_PROBLEMS+=("round $r $t: non-2xx=$n2 socket errors: $se")
            cp "$raw" "${OUT_FILE%.md}-wrk-r$r-$t.txt"
        fi
    done
done
log ""
log "\"proxy CPU µs/req\" = CPU time (user+sys, all threads) of the measured process during the run / requests completed: ssogate's process, the nginx proxy's worker, for direct the upstream worker. 10 ms tick resolution."
log ""

declare -A MED_RPS=() MED_P99=() MED_CPU=()
for t in "${TARGETS[@]}"; do
    # word splitting of the collected values is intended
    # shellcheck disable=SC2086
    MED_RPS[$t]=$(median ${RPS[$t]:-}); MED_P99[$t]=$(median ${P99[$t]:-}); MED_CPU[$t]=$(median ${CPU[$t]:-})
done
log "### Medians over $ROUNDS round(s)"
log ""
log "| target | req/s | p99 ms | proxy CPU µs/req |"
log "|---|---:|---:|---:|"
for t in "${TARGETS[@]}"; do log "| $t | ${MED_RPS[$t]} | ${MED_P99[$t]} | ${MED_CPU[$t]} |"; done
log ""
log "| ratio | req/s | p99 ms | proxy CPU µs/req |"
log "|---|---:|---:|---:|"
log "| ssogate / nginx | $(ratio "${MED_RPS[ssogate]}" "${MED_RPS[nginx]}") | $(ratio "${MED_P99[ssogate]}" "${MED_P99[nginx]}") | $(ratio "${MED_CPU[ssogate]}" "${MED_CPU[nginx]}") |"
log "| ssogate / direct | $(ratio "${MED_RPS[ssogate]}" "${MED_RPS[direct]}") | $(ratio "${MED_P99[ssogate]}" "${MED_P99[direct]}") | - |"
log ""
log "(req/s: higher is better, so a ratio below 1 means ssogate is slower; p99 and CPU: a ratio above 1 means ssogate is worse.)"
log ""

# ---------------------------------------------------------------- 7. streaming, interleaved
# sample_rss PID FILE: VmRSS every 50 ms into FILE, for at most 10 minutes.
sample_rss() {
    local pid=$1 file=$2 i
    for ((i = 0; i < 12000; i++)); do
        [[ -e /proc/$pid/status ]] || break
        rss_kib "$pid" >> "$file" 2>/dev/null || break
        sleep 0.05
    done
}

# Cases, interleaved within each round. "fast": curl reads as fast as it can, which is the
# throughput number. "slow": curl is throttled (--limit-rate), so the upstream outruns
# the client and only backpressure keeps the proxy from holding the body in memory; a
# fast client never tests that. The slow case is not run for direct (no proxy in it).
SLOW_RATE_MIB=64
STREAM_CASES=("ssogate fast" "nginx fast" "direct fast" "ssogate slow" "nginx slow")
declare -A MIBS=() RSS0=() RSSPEAK=() RSSGROW=()
STREAM_PROBLEMS=()
log "## Streaming: GET /256m (256 MiB) with curl, one download at a time"
log ""
log "fast = curl unthrottled; slow = \`curl --limit-rate ${SLOW_RATE_MIB}M\` (a client slower than the upstream: tests backpressure)."
log ""
log "| round | target | client | bytes | seconds | MiB/s | RSS before MiB | peak RSS MiB | growth MiB |"
log "|---|---|---|---:|---:|---:|---:|---:|---:|"
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${STREAM_CASES[@]}"; do
        read -r t mode <<<"$c"
        pid=${MEASURED_PID[$t]}
        limit=()
        [[ $mode == slow ]] && limit=(--limit-rate "${SLOW_RATE_MIB}M")
        sleep 0.5                                   # let the previous transfer's buffers settle
        before=$(rss_kib "$pid")
        samples="$WORK/rss-r$r-$t-$mode.txt"
        : > "$samples"
        # The sampler runs on CPU 1 with curl, off the core under test.
        taskset -c 1 bash -c "$(declare -f rss_kib sample_rss); sample_rss $pid '$samples'" &
        sampler=$!
        STARTED_PIDS+=("$sampler")
        out=$(taskset -c 1 curl -s -m 300 "${limit[@]}" -o /dev/null \
                  -w '%{http_code} %{size_download} %{time_total}' "${URL[$t]}/256m" || true)
        sleep 0.1                                   # one more sample after the last byte
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        unset 'STARTED_PIDS[-1]'
        read -r code size secs <<<"$out"
        peak=$(sort -n "$samples" | tail -n1)
        [[ -n "$peak" && "$peak" -ge "$before" ]] || peak=$before
        mibs=$(awk -v s="${size:-0}" -v t="${secs:-0}" 'BEGIN { if (t > 0) printf "%.1f", s / t / 1048576; else print "-" }')
        b_mib=$(awk -v k="$before" 'BEGIN { printf "%.1f", k / 1024 }')
        p_mib=$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')
        g_mib=$(awk -v a="$peak" -v b="$before" 'BEGIN { printf "%.1f", (a - b) / 1024 }')
        note=""
        if [[ "${code:-}" != 200 || "${size:-}" != "$SIZE_256M" ]]; then
            note=" (status ${code:-none}, expected $SIZE_256M bytes)"
            STREAM_PROBLEMS+=("round $r $t $mode client: status ${code:-none}, ${size:-0} of $SIZE_256M bytes in ${secs:-?} s")
        else
            MIBS[$c]+="$mibs "
        fi
        RSS0[$c]+="$b_mib "; RSSPEAK[$c]+="$p_mib "; RSSGROW[$c]+="$g_mib "
        log "| $r | $t | $mode | ${size:-0}$note | ${secs:-?} | $mibs | $b_mib | $p_mib | $g_mib |"
    done
done
log ""
log "### Medians over $ROUNDS round(s) (MiB = 1048576 bytes)"
log ""
log "| target | client | MiB/s | RSS before MiB | peak RSS MiB | growth during stream MiB |"
log "|---|---|---:|---:|---:|---:|"
declare -A MED_MIBS=()
for c in "${STREAM_CASES[@]}"; do
    read -r t mode <<<"$c"
    # shellcheck disable=SC2086
    MED_MIBS[$c]=$(median ${MIBS[$c]:-})
    # shellcheck disable=SC2086
    log "| $t | $mode | ${MED_MIBS[$c]} | $(median ${RSS0[$c]}) | $(median ${RSSPEAK[$c]}) | $(median ${RSSGROW[$c]}) |"
done
log ""
log "| ratio (fast client) | MiB/s |"
log "|---|---:|"
log "| ssogate / nginx | $(ratio "${MED_MIBS[ssogate fast]}" "${MED_MIBS[nginx fast]}") |"
log "| ssogate / direct | $(ratio "${MED_MIBS[ssogate fast]}" "${MED_MIBS[direct fast]}") |"
log ""
log "RSS: VmRSS sampled every 50 ms during the download (VmHWM would count since process start); ssogate's whole process, nginx's worker, for direct the upstream worker (sendfile: it never holds the body). A fast download lasts well under a second, so a short spike can fall between samples; the slow case lasts about $((256 / SLOW_RATE_MIB)) s."
log ""

# ---------------------------------------------------------------- what the logs say
log "## Problems seen"
log ""
if ((${#WRK_PROBLEMS[@]} + ${#STREAM_PROBLEMS[@]} == 0)); then
    log "- wrk and curl: none (no non-2xx responses, no socket errors, every 256 MiB download complete)."
else
    for p in "${WRK_PROBLEMS[@]}" "${STREAM_PROBLEMS[@]}"; do log "- $p"; done
    log "- raw wrk outputs of the affected runs: ${OUT_FILE%.md}-wrk-*.txt"
fi
# ssogate's stdout holds access lines plus any warning/error records; count statuses
# and keep the non-access lines, since they may be bugs.
sso_log="$WORK/ssogate/ssogate.log"
log "- ssogate access-log lines by status: $(grep -o ' status=[0-9]*' "$sso_log" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')"
other=$(grep -v ' ssogate.access: request ' "$sso_log" | grep -v -E ' (info|debug|trace) ' || true)
if [[ -n "$other" ]]; then
    log "- ssogate warnings/errors on stdout ($(wc -l <<<"$other") lines; first 20, all saved to ${OUT_FILE%.md}-ssogate-warnings.log):"
    printf '%s\n' "$other" > "${OUT_FILE%.md}-ssogate-warnings.log"
    head -n 20 <<<"$other" | sed 's/^/      /'
else
    log "- ssogate warnings/errors on stdout: none"
fi
if [[ -s "$WORK/ssogate/stderr.log" ]]; then
    log "- ssogate stderr (first 20 lines):"
    head -n 20 "$WORK/ssogate/stderr.log" | sed 's/^/      /'
fi
log "- nginx proxy access-log lines by status: $(awk '{ print $9 }' "$WORK/nginx/access.log" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')"
for n in nginx upstream; do
    if [[ -s "$WORK/$n/error.log" ]]; then
        log "- $n error.log (first 10 lines):"
        head -n 10 "$WORK/$n/error.log" | sed 's/^/      /'
    fi
done

# ssogate should exit 0 on SIGTERM after draining (SPEC): check it here rather than in
# the generic cleanup, so a non-zero exit shows up in the report.
kill -TERM "$SSO_PID" 2>/dev/null || true
sso_rc=0
for ((i = 0; i < 150; i++)); do kill -0 "$SSO_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SSO_PID" 2>/dev/null; then
    log "- ssogate did not exit within 15 s of SIGTERM"
else
    wait "$SSO_PID" || sso_rc=$?
    log "- ssogate exit status after SIGTERM: $sso_rc"
fi
log ""
log "Saved to $OUT_FILE"
