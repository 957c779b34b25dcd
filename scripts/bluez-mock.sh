#!/usr/bin/env bash
# A user-space BlueZ for tests: a private D-Bus system bus + bluezoo with two virtual
# adapters (hci0 = 00:00:00:11:11:11 for the central, hci1 = 00:00:00:22:22:22 for the
# peripheral) that see each other. See docs/ble-testing.md.
#
#   scripts/bluez-mock.sh install        install dbus-daemon (apt) and bluezoo (pip) if missing
#   scripts/bluez-mock.sh start DIR      start bus + bluezoo with state in DIR; prints
#                                        DBUS_SYSTEM_BUS_ADDRESS=... on stdout when ready
#   scripts/bluez-mock.sh stop DIR       stop what `start DIR` started
#   scripts/bluez-mock.sh bus DIR [PID]  only the bus (kept until PID exits, when given)
#   scripts/bluez-mock.sh zoo DIR        (re)start bluezoo on the bus in DIR: a fresh BlueZ
#   scripts/bluez-mock.sh stop-zoo DIR   stop bluezoo only
#
# libdbus reads the system bus address once per process, so a test process keeps one bus
# and restarts bluezoo per scenario (bluezoo does not clean up GATT objects on disconnect).
#   scripts/bluez-mock.sh run CMD...     start in a temp dir, run CMD with the bus exported,
#                                        stop, exit with CMD's status
#
# Exit status 3 means "the environment cannot be built" (tools missing and not installable).
set -euo pipefail

BLUEZOO_VERSION="1.0.2"
ADAPTER_CENTRAL="00:00:00:11:11:11"
ADAPTER_PERIPHERAL="00:00:00:22:22:22"
READY_TIMEOUT_S="${BLUEZ_MOCK_READY_TIMEOUT:-20}"

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
SCRIPT="$SCRIPT_DIR/$(basename "$0")"

log() { echo "bluez-mock: $*" >&2; }

PYTHON="${PYTHON:-python3}"
have_bluezoo() { "$PYTHON" -c "import bluezoo" >/dev/null 2>&1; }
have_tools() { command -v dbus-daemon >/dev/null 2>&1 && have_bluezoo; }

install() {
  if ! command -v dbus-daemon >/dev/null 2>&1; then
    log "installing dbus-daemon (Debian package dbus)"
    local sudo=""
    if [ "$(id -u)" != "0" ]; then sudo="sudo -n"; fi
    { $sudo apt-get update -q && $sudo apt-get install -y -q dbus; } >&2 || { log "apt-get install dbus failed"; return 3; }
  fi
  if ! have_bluezoo; then
    log "installing bluezoo==${BLUEZOO_VERSION} from PyPI"
    command -v "$PYTHON" >/dev/null 2>&1 || { log "$PYTHON not found"; return 3; }
    "$PYTHON" -m pip install -q "bluezoo==${BLUEZOO_VERSION}" >&2 \
      || "$PYTHON" -m pip install -q --user "bluezoo==${BLUEZOO_VERSION}" >&2 \
      || "$PYTHON" -m pip install -q --break-system-packages "bluezoo==${BLUEZOO_VERSION}" >&2 \
      || { log "pip install bluezoo failed"; return 3; }
  fi
  have_tools || { log "dbus-daemon or bluezoo still missing after install"; return 3; }
}

# A private system bus in DIR; prints its address. With WATCH_PID, a watchdog stops the bus
# (and bluezoo) and removes DIR once that process exits (test processes use this).
bus() {
  local dir="$1" watch="${2:-}"
  mkdir -p "$dir"
  command -v dbus-daemon >/dev/null 2>&1 || { log "dbus-daemon missing: run '$0 install'"; return 3; }
  cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
CONF
  local out address
  out="$(dbus-daemon --config-file="$dir/bus.conf" --fork --print-address=1 --print-pid=2 2>"$dir/dbus.pid")" \
    || { log "dbus-daemon failed to start"; return 3; }
  address="$(printf '%s\n' "$out" | head -n1)"
  [ -n "$address" ] || { log "dbus-daemon printed no address"; return 3; }
  echo "$address" >"$dir/address"
  if [ -n "$watch" ]; then
    setsid bash -c 'while [ -r "/proc/$1/stat" ] && ! awk "{ exit (\$3 == \"Z\") ? 0 : 1 }" "/proc/$1/stat"; do sleep 1; done
                    "$2" stop "$3"; rm -rf "$3"' \
      _ "$watch" "$SCRIPT" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  echo "DBUS_SYSTEM_BUS_ADDRESS=$address"
}

# bluezoo with two adapters on the bus in DIR; returns once both adapters are up.
zoo() {
  local dir="$1"
  have_bluezoo || { log "bluezoo missing: run '$0 install'"; return 3; }
  [ -f "$dir/address" ] || { log "no bus in $dir: run '$0 bus $dir' first"; return 3; }
  stop_zoo "$dir"
  : >"$dir/bluezoo.log"
  # bluezoo-fixed.py: bluezoo with connection teardown (see that file).
  DBUS_SYSTEM_BUS_ADDRESS="$(cat "$dir/address")" setsid "$PYTHON" "$SCRIPT_DIR/bluezoo-fixed.py" --auto-enable --scan-interval 1 \
    --adapter="$ADAPTER_CENTRAL" --adapter="$ADAPTER_PERIPHERAL" \
    >"$dir/bluezoo.out" 2>"$dir/bluezoo.log" </dev/null &
  echo $! >"$dir/bluezoo.pid"
  local waited=0
  while [ "$(grep -c 'Adding adapter' "$dir/bluezoo.log" 2>/dev/null || true)" -lt 2 ]; do
    if ! alive "$(cat "$dir/bluezoo.pid")"; then
      log "bluezoo exited early:"; cat "$dir/bluezoo.log" >&2; return 3
    fi
    if [ "$waited" -ge $((READY_TIMEOUT_S * 10)) ]; then
      log "bluezoo not ready after ${READY_TIMEOUT_S}s:"; cat "$dir/bluezoo.log" >&2; stop_zoo "$dir"; return 3
    fi
    sleep 0.1; waited=$((waited + 1))
  done
}

# True while PID runs (a zombie, never reaped in some sandboxes, counts as gone).
alive() { [ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }

kill_pidfile() {
  local f="$1" pid
  if [ -f "$f" ]; then
    pid="$(head -n1 "$f" | tr -dc 0-9)"
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      # Wait (up to 2 s) so the next bluezoo does not race the old one for the bus name.
      for _ in $(seq 20); do alive "$pid" || break; sleep 0.1; done
    fi
    rm -f "$f"
  fi
}

stop_zoo() { kill_pidfile "$1/bluezoo.pid"; }

start() {
  local line
  line="$(bus "$1")" || return $?
  zoo "$1" || { stop "$1"; return 3; }
  echo "$line"
}

stop() {
  stop_zoo "$1"
  kill_pidfile "$1/dbus.pid"
}

run() {
  local rc=0 line
  RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/bluez-mock.XXXXXX")"
  trap 'stop "$RUN_DIR"; rm -rf "$RUN_DIR"' EXIT
  line="$(start "$RUN_DIR")" || return $?
  export "${line?}"
  "$@" || rc=$?
  return $rc
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install ;;
  bus) [ $# -ge 1 ] || { log "usage: $0 bus DIR [WATCH_PID]"; exit 2; }; bus "$@" ;;
  zoo) [ $# -eq 1 ] || { log "usage: $0 zoo DIR"; exit 2; }; zoo "$1" ;;
  stop-zoo) [ $# -eq 1 ] || { log "usage: $0 stop-zoo DIR"; exit 2; }; stop_zoo "$1" ;;
  start) [ $# -eq 1 ] || { log "usage: $0 start DIR"; exit 2; }; start "$1" ;;
  stop) [ $# -eq 1 ] || { log "usage: $0 stop DIR"; exit 2; }; stop "$1" ;;
  run) [ $# -ge 1 ] || { log "usage: $0 run CMD..."; exit 2; }; run "$@" ;;
  *) log "usage: $0 install | start DIR | stop DIR | bus DIR [PID] | zoo DIR | stop-zoo DIR | run CMD..."; exit 2 ;;
esac
