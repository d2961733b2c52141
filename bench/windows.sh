#!/usr/bin/env bash
# Windows benchmark under Wine (not a test): named-pipe `eval 1+1` round trip of the
# beep_backend pipe server against a raw Python named-pipe echo with the same framing, and
# cold start to first answer per transport (pipe, http, rpc). Needs the cache that
# scripts/test-windows.sh fills (target/windows-cache: WinPython's CPython 3.13, grpcio's
# Windows wheels). Prints the JSON of bench/windows_pipe.py; results: bench/windows-results.md.
# Usage: bench/windows.sh [CALLS [ROUNDS]]   # ROUNDS: alternating rounds of CALLS/ROUNDS each (10)
#        bench/windows.sh requests [CALLS]   # round trips to the Wine server per call (load-independent)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${CARGO_TARGET_DIR:-$ROOT/target}/windows-cache"
PYTHON="$CACHE/winpython/cp313/python.exe"
[[ -f $PYTHON ]] || { echo "run scripts/test-windows.sh first (no $PYTHON)" >&2; exit 1; }
export WINEDEBUG=-all WINEDLLOVERRIDES="winedbg.exe=d"
WINEPREFIX=$(mktemp -d /tmp/beep-wine-bench.XXXXXX)
export WINEPREFIX
OUT=$(mktemp -d /tmp/beep-bench-out.XXXXXX)
cleanup() {
    timeout 30 wineserver -k 2>/dev/null || true
    rm -rf "$WINEPREFIX" "$OUT"
}
trap cleanup EXIT
winpath() { echo "Z:${1//\//\\}"; }
# Wine's python.exe wants a pipe, not a file, for stdout (see scripts/test-windows.sh).
wine_out() { # wine_out LOG CMD...
    local log=$1
    shift
    mkfifo "$OUT/fifo"
    cat "$OUT/fifo" >"$log" &
    local reader=$!
    "$@" </dev/null >"$OUT/fifo" 2>&1 || { wait $reader; cat "$log" >&2; return 1; }
    wait $reader
    rm -f "$OUT/fifo"
}
wine_out "$OUT/boot.log" wine wineboot --init
timeout 60 wineserver -w || true
if [[ ${1:-} == requests ]]; then
    # Wine's server traces every request (+server) to its stderr: count them per thread
    # between the marks that bench/windows_pipe.py --mark leaves around each server's calls.
    calls=${2:-500}
    WINEDEBUG=+server wine_out "$OUT/trace.log" wine "$PYTHON" -u bench/windows_pipe.py --mark --calls "$calls"
    timeout 60 wineserver -w || true
    python3 - "$OUT/trace.log" "$calls" <<'EOF'
import collections, json, re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
calls = int(sys.argv[2])
marks = {"backend": ("dead0", "dead4"), "raw_echo": ("dead8", "deadc")}
counts = {}
for which, (a, b) in marks.items():
    start = next(i for i, line in enumerate(lines) if "open_process( pid=%s," % a in line)
    end = next(i for i, line in enumerate(lines) if "open_process( pid=%s," % b in line)
    counts[which] = collections.Counter()
    for line in lines[start + 1 : end]:
        m = re.match(r"^([0-9a-f]+): \w+\(", line)
        if m:
            counts[which][m.group(1)] += 1
# The client is the thread that made the marks (it is busy in both); each server is the
# busiest other thread of its part.
client = next(t for t, _ in counts["backend"].most_common() if t in counts["raw_echo"])
result = {}
for which, per_thread in counts.items():
    server = next(t for t, _ in per_thread.most_common() if t != client)
    result[which] = {"server": round(per_thread[server] / calls, 2), "client": round(per_thread[client] / calls, 2)}
print(json.dumps({"calls": calls, "wine_server_requests_per_call": result}, indent=1))
EOF
    exit 0
fi
args=(--calls "${1:-2000}" --rounds "${2:-10}")
GRPC_SITE="$CACHE/grpc-site"
if ls "$CACHE"/grpc/grpcio-*win_amd64.whl >/dev/null 2>&1; then
    if [[ ! -f $GRPC_SITE/.complete ]]; then
        rm -rf "$GRPC_SITE"
        wine_out "$OUT/pip.log" wine "$PYTHON" -m pip install -q --no-index \
            --find-links "$(winpath "$CACHE/grpc")" --target "$(winpath "$GRPC_SITE")" grpcio protobuf
        touch "$GRPC_SITE/.complete"
    fi
    args+=(--grpc-path "$(winpath "$GRPC_SITE")")
fi
# The JSON comes through a file: the Wine server inherits the output pipe and may print a dump
# of its objects there when it exits.
wine_out "$OUT/bench.log" wine "$PYTHON" -u bench/windows_pipe.py "${args[@]}" --out "$(winpath "$OUT/bench.json")"
cat "$OUT/bench.json"
