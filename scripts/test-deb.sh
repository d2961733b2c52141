#!/usr/bin/env bash
# Unpack a .deb of the app, start its binary under Xvfb, check that it stays up and shows
# its window, then close it. Usage: scripts/test-deb.sh path/to/app.deb
set -euo pipefail
deb=$(realpath "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
dpkg-deb -x "$deb" "$dir/root"
bin="$dir/root/usr/bin/beep-host-gui"
[ -x "$bin" ] || { echo "test-deb: no usr/bin/beep-host-gui in $deb" >&2; exit 1; }
export BEEP_HOST_HOME="$dir/home"
xvfb-run -a bash -c '
  "$1" & pid=$!
  for _ in $(seq 1 40); do
    sleep 0.5
    kill -0 $pid 2>/dev/null || { echo "test-deb: the app exited" >&2; exit 1; }
    if xwininfo -root -tree | grep -q "\"Beep Python Host\""; then
      sleep 2
      kill -0 $pid 2>/dev/null || { echo "test-deb: the app exited after showing its window" >&2; exit 1; }
      echo "test-deb: window shown, app up (pid $pid)" >&2
      kill $pid; wait $pid 2>/dev/null || true
      exit 0
    fi
  done
  echo "test-deb: no window named \"Beep Python Host\"" >&2
  xwininfo -root -tree >&2 || true
  kill $pid 2>/dev/null || true
  exit 1
' _ "$bin"
