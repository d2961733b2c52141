#!/usr/bin/env python3
"""The daemon against the per-backend supervisors it replaced, side by side in one run.

    python3 bench/daemon.py --old /path/to/old/beep-host [--new target/release/beep-host]

`--old` is a `beep-host` built from a commit before the daemon (each detached backend
had its own supervisor process); `--new` one with the daemon. Each gets a fresh
`BEEP_HOST_HOME` with a plain `admin` environment made from this interpreter. Measured:

- `ps` with no backend (the daemon already running for the new one),
- `start http --detach` until it returns ready, then `stop`,
- with 20 backends running: the CPU and memory of what supervises them (the daemon; the
  old binary's 20 supervisor processes), over a quiet window.

Not a test: it prints medians and ratios (new / old) and exits 0.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def home_with_env(root: Path, name: str) -> dict:
    home = root / name
    env_dir = home / "data" / "envs" / "admin"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True
    )
    env = dict(
        os.environ,
        BEEP_HOST_HOME=str(home),
        BEEP_BACKEND_PYTHONPATH=str(REPO / "python"),
    )
    env.pop("RUST_LOG", None)
    return env


def timed(cmd, env) -> float:
    began = time.perf_counter()
    subprocess.run(
        cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return (time.perf_counter() - began) * 1000


def start(exe, env) -> tuple[float, str]:
    began = time.perf_counter()
    out = subprocess.run(
        [exe, "start", "http", "--detach"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    took = (time.perf_counter() - began) * 1000
    backend = out.stdout.split()[1]
    return took, backend


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) * 1024
    return rss, pss


def supervisors(exe: str, home: str) -> list[int]:
    """Pids of the processes of `exe` that supervise backends in `home`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if (
            not cmdline
            or os.path.basename(cmdline[0].decode(errors="replace")) != "beep-host"
        ):
            continue
        args = [a.decode(errors="replace") for a in cmdline[1:]]
        if (
            "daemon" in args or "--supervise" in args
        ) and f"BEEP_HOST_HOME={home}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def idle_cost(exe, env, seconds) -> tuple[int, float, int, int]:
    """Start 20 backends; (supervising processes, % of a core, RSS, PSS) over `seconds`."""
    ids = []
    for i in range(20):
        transport = "pipe" if i % 2 == 0 else "http"
        out = subprocess.run(
            [exe, "start", transport, "--detach"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        ids.append(out.stdout.split()[1])
    time.sleep(2)
    pids = supervisors(exe, env["BEEP_HOST_HOME"])
    before = sum(cpu_ticks(p) for p in pids)
    time.sleep(seconds)
    after = sum(cpu_ticks(p) for p in pids)
    rss = pss = 0
    for p in pids:
        r, s = memory(p)
        rss += r
        pss += s
    subprocess.run([exe, "stop", "--all"], env=env, check=True, capture_output=True)
    cpu = (after - before) / CLK_TCK / seconds * 100
    return len(pids), cpu, rss, pss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", required=True, help="beep-host before the daemon")
    parser.add_argument("--new", default=str(REPO / "target/release/beep-host"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--idle-secs", type=float, default=10.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bd", dir="/tmp"))
    try:
        old_env = home_with_env(root, "old")
        new_env = home_with_env(root, "new")
        exes = {"old": args.old, "new": args.new}
        envs = {"old": old_env, "new": new_env}
        subprocess.run(
            [args.new, "ps"], env=new_env, check=True, capture_output=True
        )  # the daemon

        ps = {"old": [], "new": []}
        starts = {"old": [], "new": []}
        for _ in range(args.rounds):
            for side in ("old", "new"):
                ps[side].append(timed([exes[side], "ps"], envs[side]))
        for _ in range(max(5, args.rounds // 3)):
            for side in ("old", "new"):
                took, backend = start(exes[side], envs[side])
                starts[side].append(took)
                subprocess.run(
                    [exes[side], "stop", backend],
                    env=envs[side],
                    check=True,
                    capture_output=True,
                )
                if side == "new":
                    subprocess.run(
                        [exes[side], "rm", backend],
                        env=envs[side],
                        check=True,
                        capture_output=True,
                    )
        idle = {
            side: idle_cost(exes[side], envs[side], args.idle_secs)
            for side in ("old", "new")
        }

        med = statistics.median
        print("| measure | old (per-backend supervisors) | new (daemon) | new / old |")
        print("|---|---|---|---|")
        print(
            f"| `ps`, no backend, ms (median of {args.rounds}) | {med(ps['old']):.1f} | {med(ps['new']):.1f} | {med(ps['new']) / med(ps['old']):.2f}x |"
        )
        print(
            f"| `start http --detach` to ready, ms (median of {len(starts['old'])}) | {med(starts['old']):.1f} | {med(starts['new']):.1f} | {med(starts['new']) / med(starts['old']):.2f}x |"
        )
        (op, oc, orss, opss), (np, nc, nrss, npss) = idle["old"], idle["new"]
        print(f"| 20 backends idle: supervising processes | {op} | {np} | |")
        print(
            f"| 20 backends idle: their CPU, % of a core over {args.idle_secs:.0f} s | {oc:.2f} | {nc:.2f} | {nc / oc if oc else float('nan'):.2f}x |"
        )
        print(
            f"| 20 backends idle: their memory, MB RSS (PSS) | {orss / 1e6:.1f} ({opss / 1e6:.1f}) | {nrss / 1e6:.1f} ({npss / 1e6:.1f}) | {npss / opss if opss else float('nan'):.2f}x PSS |"
        )
    finally:
        subprocess.run([args.new, "daemon", "stop"], env=new_env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
