#!/usr/bin/env bash
# The whole demo in one command: a simulated Gatewayz gateway, a local Prometheus scraping it,
# and summary-exporter asking that Prometheus for its summary. Ctrl-C stops all three.
#
# Usage: scripts/demo.sh
# Environment: DEMO_GATEWAY_PORT (8000), DEMO_PROMETHEUS_PORT (9090), DEMO_EXPORTER_PORT (9199),
#              DEMO_VENV (<repo>/.venv): the virtualenv that holds summary-exporter,
#              DEMO_DIR (<repo>/.demo, git-ignored): state and logs,
#              DEMO_STARTUP_TIMEOUT (30): seconds each component gets to answer.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Under `make demo`, Ctrl-C would reach make as well as this script, and make would die of it
# once the demo has stopped. Run the demo as a job of its own (job control gives it its own
# process group and the terminal), so that Ctrl-C reaches it alone and make sees it end well.
if [[ -t 0 && -z "${DEMO_IN_FOREGROUND:-}" ]]; then
    set -m
    status=0
    DEMO_IN_FOREGROUND=1 bash "${BASH_SOURCE[0]}" "$@" || status=$?
    exit "$status"
fi

GATEWAY_PORT="${DEMO_GATEWAY_PORT:-8000}"
PROMETHEUS_PORT="${DEMO_PROMETHEUS_PORT:-9090}"
EXPORTER_PORT="${DEMO_EXPORTER_PORT:-9199}"
VENV="${DEMO_VENV:-$ROOT/.venv}"
DEMO_DIR="${DEMO_DIR:-$ROOT/.demo}"
PROMETHEUS=/usr/bin/prometheus
STARTUP_TIMEOUT="${DEMO_STARTUP_TIMEOUT:-30}"

GATEWAY_PID="" PROMETHEUS_PID="" EXPORTER_PID=""

BOLD="" RED="" PLAIN=""
if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[1;31m' PLAIN=$'\033[0m'; fi
say() { printf '%sdemo:%s %s\n' "$BOLD" "$PLAIN" "$*"; }
die() {
    printf '%sdemo:%s %s\n' "$RED" "$PLAIN" "$*" >&2
    exit 1
}

# Stop what this script started, by PID, newest first; escalate to KILL after 10 s.
stop_all() {
    trap - EXIT INT TERM HUP
    local pid pids=()
    for pid in "$EXPORTER_PID" "$PROMETHEUS_PID" "$GATEWAY_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    ((${#pids[@]})) || return 0
    say "stopping (pids ${pids[*]})"
    for _ in $(seq 1 40); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.25
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'echo; exit 0' INT # Ctrl-C is how the demo is meant to end: quietly, with status 0
trap 'exit 143' TERM
trap 'exit 129' HUP

for port in "$GATEWAY_PORT" "$PROMETHEUS_PORT" "$EXPORTER_PORT"; do
    [[ "$port" =~ ^[0-9]+$ ]] || die "not a port number: '$port'"
done
[[ "$STARTUP_TIMEOUT" =~ ^[0-9]+$ ]] || die "not a number of seconds: '$STARTUP_TIMEOUT'"

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

# --- 1. Install what is missing ----------------------------------------------------------
packages=()
[[ -x "$PROMETHEUS" ]] || packages+=(prometheus)
if [[ ! -x "$VENV/bin/summary-exporter" ]]; then
    command -v python3 >/dev/null || packages+=(python3)
    # Debian splits ensurepip into python3-venv; without it `python3 -m venv` fails.
    python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
fi
if ((${#packages[@]})); then
    say "installing ${packages[*]} with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${packages[@]}"
    if [[ " ${packages[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
        systemctl is-active --quiet prometheus 2>/dev/null; then
        # With systemd the package starts its own Prometheus on :9090; the demo runs its own.
        say "stopping the prometheus service the package just started"
        as_root systemctl disable --now prometheus || true
    fi
fi
if [[ ! -x "$VENV/bin/summary-exporter" ]]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "summary-exporter needs Python >= 3.11; $(python3 --version) found"
    say "creating $VENV and installing summary-exporter (pip install -e .)"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -e .
fi

# --- 2. Start the three processes ---------------------------------------------------------
mkdir -p "$DEMO_DIR/prometheus-data"

# The helpers below ignore SIGINT: a Ctrl-C while one runs must not print a Python traceback;
# this script acts on it as soon as the helper returns.
quiet_python() { (
    trap '' INT
    exec "$VENV/bin/python" "$@"
); }

# HTTP status of a GET, or 000 when nothing answers (python, so curl is not required).
http_status() {
    quiet_python - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception:
    print("000")
PY
}

# Can we listen on the port? SO_REUSEADDR as the servers use it, so TIME_WAIT does not count.
port_free() {
    quiet_python -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# wait_until_up NAME PID URL LOG ACCEPT: poll URL until its status matches ACCEPT (a regex);
# on death or timeout, show the log's tail and exit (the EXIT trap stops the others).
wait_until_up() {
    local name="$1" pid="$2" url="$3" log="$4" accept="$5" status
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf '\n--- last lines of %s ---\n' "$log" >&2
            tail -n 25 "$log" >&2 || true
            die "$name exited during startup"
        fi
        status="$(http_status "$url")"
        if [[ "$status" =~ ^($accept)$ ]]; then
            say "$name is up ($url answered $status)"
            return 0
        fi
        sleep 0.5
    done
    printf '\n--- last lines of %s ---\n' "$log" >&2
    tail -n 25 "$log" >&2 || true
    die "$name did not answer $url within ${STARTUP_TIMEOUT}s"
}

for name_port in "gateway:$GATEWAY_PORT" "prometheus:$PROMETHEUS_PORT" "exporter:$EXPORTER_PORT"; do
    name="${name_port%%:*}" port="${name_port#*:}"
    port_free "$port" ||
        die "port $port ($name) is in use: stop what holds it, or set DEMO_${name^^}_PORT"
done

# Each runs under setsid, out of the terminal's process group: Ctrl-C reaches only this script,
# which then stops them in order (Prometheus would otherwise die first and look like a crash).
# Without job control a background child is no group leader, so setsid execs in place and $!
# is the server's own PID.
say "starting the simulated gateway on 127.0.0.1:$GATEWAY_PORT"
setsid "$VENV/bin/python" -m demo.gateway --host 127.0.0.1 --port "$GATEWAY_PORT" \
    >"$DEMO_DIR/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_until_up gateway "$GATEWAY_PID" "http://127.0.0.1:$GATEWAY_PORT/metrics" \
    "$DEMO_DIR/gateway.log" 200

say "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT (scrapes every 2 s)"
sed -e "s|@DEMO_DIR@|$DEMO_DIR|g" -e "s|@GATEWAY_PORT@|$GATEWAY_PORT|g" \
    -e "s|@EXPORTER_PORT@|$EXPORTER_PORT|g" demo/prometheus.yml >"$DEMO_DIR/prometheus.yml"
setsid "$PROMETHEUS" --config.file="$DEMO_DIR/prometheus.yml" \
    --storage.tsdb.path="$DEMO_DIR/prometheus-data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$DEMO_DIR/prometheus.log" 2>&1 &
PROMETHEUS_PID=$!
wait_until_up Prometheus "$PROMETHEUS_PID" "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" \
    "$DEMO_DIR/prometheus.log" 200

say "starting summary-exporter on 127.0.0.1:$EXPORTER_PORT"
EXPORTER_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" EXPORTER_PORT="$EXPORTER_PORT" \
    EXPORTER_HOST=127.0.0.1 EXPORTER_REFRESH_INTERVAL=5 EXPORTER_WINDOW=1m \
    setsid "$VENV/bin/summary-exporter" serve >"$DEMO_DIR/exporter.log" 2>&1 &
EXPORTER_PID=$!
# Any HTTP answer counts: before its first refresh the exporter may rightly say 503.
wait_until_up summary-exporter "$EXPORTER_PID" "http://127.0.0.1:$EXPORTER_PORT/metrics" \
    "$DEMO_DIR/exporter.log" '[1-5][0-9][0-9]'

CLI="$VENV/bin/summary-exporter"
[[ "$CLI" == "$ROOT"/* ]] && CLI="${CLI#"$ROOT"/}"
cat <<INFO

  The demo is running. Data appears within ~10 s (Prometheus applies its targets ~5 s after
  start); the summary covers the last minute and refreshes every 5 s. The gateway is healthy
  most of the time; now and then one provider fails for a while (its circuit breaker opens,
  requests only it serves fail, a deduction is missed): watch the page go ok, degraded, ok.
  Gateway: $(head -n 1 "$DEMO_DIR/gateway.log").

    status page        http://127.0.0.1:$EXPORTER_PORT/
    health             http://127.0.0.1:$EXPORTER_PORT/health
    exporter summary   http://127.0.0.1:$EXPORTER_PORT/summary
    exporter gauges    http://127.0.0.1:$EXPORTER_PORT/metrics
    Prometheus         http://127.0.0.1:$PROMETHEUS_PORT/graph?g0.expr=sum(rate(fastapi_requests_total[1m]))
    gateway metrics    http://127.0.0.1:$GATEWAY_PORT/metrics
    logs               $DEMO_DIR/*.log
    the CLI            $CLI check --url http://127.0.0.1:$EXPORTER_PORT

  Press Ctrl-C to stop all three.

INFO
# --- 3. Run until Ctrl-C/TERM (the traps) or until one of the three dies ------------------
while true; do
    wait -n || true # returns when a child exits; a trapped signal exits in its trap instead
    for name_pid in "gateway:$GATEWAY_PID" "Prometheus:$PROMETHEUS_PID" "exporter:$EXPORTER_PID"; do
        if ! kill -0 "${name_pid#*:}" 2>/dev/null; then
            name="${name_pid%%:*}"
            log="$DEMO_DIR/${name,,}.log"
            printf '\n--- last lines of %s ---\n' "$log" >&2
            tail -n 25 "$log" >&2 || true
            die "$name stopped unexpectedly; stopping the others"
        fi
    done
done
