#!/usr/bin/env bash
# Unpack a .deb of the app and check it as installed: the app, the `beep-host` CLI beside it
# and the precompiled `beep_backend` package in usr/share; a backend started by the installed
# CLI from the installed files (not the checkout's) answers `eval 1+1`; the desktop entry
# names the app; the app starts under Xvfb and shows its window.
# Usage: scripts/test-deb.sh path/to/app.deb (or path/to/app.rpm: the same checks)
set -euo pipefail
deb=$(realpath "$1")
dir=$(mktemp -d)
root="$dir/root"
export BEEP_HOST_HOME="$dir/home"
cleanup() {
  # The daemon (started by the CLI) exits when its home is removed.
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "test-deb: $*" >&2; exit 1; }
case $deb in
  *.rpm) # the same checks for the .rpm: unpacked with rpm2cpio instead of dpkg-deb
    command -v rpm2cpio >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm2cpio cpio >/dev/null
    # (Debian's rpm2cpio 4.18 exits 1 after writing a complete archive of Tauri's rpm: its
    # status is not trusted; cpio's is, and the files are checked below.)
    mkdir -p "$root" && { rpm2cpio "$deb" || true; } >"$dir/payload.cpio"
    (cd "$root" && cpio -idm --quiet <"$dir/payload.cpio") || fail "cannot unpack $deb" ;;
  *) dpkg-deb -x "$deb" "$root" ;;
esac
bin="$root/usr/bin/beep-host-gui"
cli="$root/usr/bin/beep-host"
pkg="$root/usr/share/beep-host/python/beep_backend"
[ -x "$bin" ] || fail "no usr/bin/beep-host-gui in $deb"
[ -x "$cli" ] || fail "no usr/bin/beep-host in $deb"
[ -f "$pkg/__init__.py" ] && [ -f "$pkg/__main__.py" ] || fail "no beep_backend package under usr/share/beep-host/python"
ls "$pkg"/__pycache__/*.pyc >/dev/null 2>&1 || fail "beep_backend is not precompiled (no __pycache__/*.pyc)"

# The desktop entry: names the app and runs the installed binary.
desktop=$(ls "$root"/usr/share/applications/*.desktop 2>/dev/null | head -1)
[ -n "$desktop" ] || fail "no desktop entry under usr/share/applications"
grep -q '^Name=Beep Python Host$' "$desktop" || fail "desktop entry without Name=Beep Python Host: $(cat "$desktop")"
grep -Eq '^Exec=beep-host-gui( |$)' "$desktop" || fail "desktop entry does not run beep-host-gui: $(cat "$desktop")"
icon=$(sed -n 's/^Icon=//p' "$desktop")
[ -n "$icon" ] && find "$root/usr/share/icons" -name "$icon.png" | grep -q . || fail "desktop entry icon '$icon' is not shipped"
command -v desktop-file-validate >/dev/null && { desktop-file-validate "$desktop" || fail "desktop-file-validate refused $desktop"; }

# A backend from the installed files: the installed CLI (and the daemon it starts, itself)
# finds beep_backend in usr/share next to it; no variable points anywhere else.
unset BEEP_BACKEND_PYTHONPATH BEEP_HOST_DAEMON_EXE PYTHONPATH
export BEEP_HOST_INSTALLER=pip
python=$(python3 -c 'import sys; print(sys.executable)')
"$cli" venv create debtest --runtime "$python" >/dev/null
started=$("$cli" start pipe --venv debtest --detach)
id=$(sed -n 's/.*backend \([0-9a-f]*\) ready.*/\1/p' <<<"$started")
pid=$(sed -n 's/.*pid \([0-9]*\).*/\1/p' <<<"$started" | head -1)
[ -n "$id" ] && [ -n "$pid" ] || fail "no backend started: $started"
pythonpath=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^PYTHONPATH=//p')
first=$(realpath -m "${pythonpath%%:*}")
[ "$first" = "$(realpath "$root/usr/share/beep-host/python")" ] ||
  fail "backend $pid does not run the installed package (PYTHONPATH=$pythonpath)"
answer=$("$cli" eval "$id" 1+1)
[ "$answer" = "2" ] || fail "eval 1+1 through the installed CLI answered: $answer"
"$cli" stop "$id" >/dev/null
echo "test-deb: installed CLI ran backend $id from $pkg: eval 1+1 = $answer" >&2

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
