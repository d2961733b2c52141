#!/usr/bin/env python3
"""Environment benchmarks, side by side in one run (release build of beep-host).

    python3 bench/venv.py [--runs N] [--envs 200]

Measures `beep-host venv create` vs `python -m venv` vs `uv venv`, `venv list` with
200 environments, and `pkg install grpcio protobuf` (warm cache) vs `uv pip install`.
Prints a table of medians with ratios. uv is the one beep-host provisions.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "beep-host"


def run(cmd, env=None, quiet=True):
    out = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.PIPE,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"failed: {cmd}\n{out.stderr}")


def timed(cmd, env=None):
    start = time.perf_counter()
    run(cmd, env)
    return time.perf_counter() - start


def median_ms(samples):
    return statistics.median(samples) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--envs", type=int, default=200)
    args = parser.parse_args()

    print("building release binary...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    python = subprocess.run(
        ["python3", "-c", "import sys;print(sys.executable)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()

    work = Path(tempfile.mkdtemp(prefix="beep-bench-"))
    env = dict(os.environ, BEEP_HOST_HOME=str(work / "home"))
    env.pop("BEEP_HOST_INSTALLER", None)
    run([BIN, "runtime", "default", python], env)
    # Provisions uv into <data>/tools on first use; the same uv is the baseline.
    run([BIN, "venv", "create", "warmup"], env)
    uv = work / "home" / "data" / "tools" / "uv" / "bin" / "uv"
    if os.environ.get("BEEP_HOST_UV"):
        uv = Path(os.environ["BEEP_HOST_UV"])
    env["BEEP_HOST_UV"] = str(uv)
    plain = work / "plain"
    plain.mkdir()
    rows = []

    # --- create (interleaved, so both see the same machine state)
    n = args.runs
    beep, uvv, nopip = [], [], []
    for i in range(n):
        beep.append(timed([BIN, "venv", "create", f"c{i}"], env))
        uvv.append(timed([uv, "venv", "--quiet", "--python", python, plain / f"u{i}"]))
        nopip.append(timed([python, "-m", "venv", "--without-pip", plain / f"n{i}"]))
    withpip = [timed([python, "-m", "venv", plain / f"p{i}"]) for i in range(3)]
    rows += [
        ("venv create", "beep-host venv create", median_ms(beep), median_ms(uvv)),
        ("venv create", "uv venv", median_ms(uvv), median_ms(uvv)),
        ("venv create", "python -m venv --without-pip", median_ms(nopip), median_ms(uvv)),
        ("venv create", "python -m venv", median_ms(withpip), median_ms(uvv)),
    ]

    # --- list with many environments
    existing = len(json.loads(subprocess.run(
        [BIN, "venv", "list", "--json"], env=env, capture_output=True, text=True, check=True,
    ).stdout))
    for i in range(max(0, args.envs - existing)):
        run([BIN, "venv", "create", f"l{i}"], env)
    count = len(json.loads(subprocess.run(
        [BIN, "venv", "list", "--json"], env=env, capture_output=True, text=True, check=True,
    ).stdout))
    listing = [timed([BIN, "venv", "list", "--json"], env) for _ in range(n)]
    rows.append((f"venv list ({count} envs)", "beep-host venv list --json",
                 median_ms(listing), 100.0))

    # --- pkg install with a warm cache
    reqs = ["grpcio", "protobuf"]
    run([uv, "venv", "--quiet", "--python", python, plain / "warm"])
    run([uv, "pip", "install", "--quiet", "--python", plain / "warm" / "bin" / "python", *reqs])
    beep_i, uv_i = [], []
    for i in range(n):
        run([BIN, "venv", "create", f"i{i}"], env)
        beep_i.append(timed([BIN, "pkg", "install", f"i{i}", *reqs], env))
        target = plain / f"i{i}"
        run([uv, "venv", "--quiet", "--python", python, target])
        uv_i.append(timed([uv, "pip", "install", "--python", target / "bin" / "python", *reqs]))
    rows += [
        ("pkg install grpcio protobuf", "beep-host pkg install", median_ms(beep_i), median_ms(uv_i)),
        ("pkg install grpcio protobuf", "uv pip install", median_ms(uv_i), median_ms(uv_i)),
    ]

    print(f"\nmedians of {n} runs (python -m venv: 3), {python}, {uv}")
    print(f"{'operation':<30} {'command':<32} {'median':>10} {'vs':>10} {'ratio':>7}")
    for op, cmd, ms, base in rows:
        print(f"{op:<30} {cmd:<32} {ms:>8.1f}ms {base:>8.1f}ms {ms / base:>6.2f}x")
    print("\ngoals: create <= 1.2x uv venv; list of 200 < 100 ms (ratio vs 100 ms);"
          " pkg install <= 1.2x uv pip install")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
