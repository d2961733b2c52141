"""Benchmark: install the same test runtime archive from the same local mirror with
`beep-host runtime install` and with `uv python install`, side by side, in one run.

Usage: python3 bench/runtime_install.py [--rounds 7] [--beep target/release/beep-host]
Needs: patchelf (for the archive), network access to PyPI once (to get uv).
Prints the median of each tool and the ratio beep-host / uv (goal: <= 1.0).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GITHUB = "https://github.com/astral-sh/python-build-standalone/releases/download"


def ensure_uv(work: Path) -> Path:
    venv = work / "uv-venv"
    uv = venv / "bin" / "uv"
    if not uv.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(venv / "bin" / "pip"), "install", "-q", "uv"])
    return uv


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--beep", default=str(ROOT / "target/release/beep-host"))
    args = parser.parse_args()

    work = ROOT / "bench" / "out"
    work.mkdir(parents=True, exist_ok=True)
    fixture_dir = work / "pbs"
    if not (fixture_dir / "fixture.json").exists():
        out = subprocess.check_output([sys.executable, str(ROOT / "tests/support/make_pbs_archive.py"), "--out", str(fixture_dir)])
        (fixture_dir / "fixture.json").write_bytes(out)
    fx = json.loads((fixture_dir / "fixture.json").read_text())
    archive = fx["archives"]["tar.gz"]
    version, build = fx["version"], fx["build"]
    mirror = work / "mirror"
    (mirror / build).mkdir(parents=True, exist_ok=True)
    shutil.copy(archive["path"], mirror / build / archive["name"])
    server, port = serve(mirror)
    quoted = archive["name"].replace("+", "%2B")
    url = f"http://127.0.0.1:{port}/{build}/{quoted}"

    catalog = work / "catalog.json"
    arch = "x86_64" if "x86_64" in fx["triple"] else "aarch64"
    catalog.write_text(json.dumps({"entries": [{
        "version": version, "os": "linux", "arch": arch, "libc": "gnu", "build": build,
        "url": f"{GITHUB}/{build}/{quoted}", "sha256": archive["sha256"]}]}))
    major, minor, patch = (int(x) for x in version.split("."))
    uv_json = work / "uv-downloads.json"
    uv_json.write_text(json.dumps({f"cpython-{version}-linux-{arch}-gnu": {
        "name": "cpython", "arch": {"family": arch, "variant": None}, "os": "linux", "libc": "gnu",
        "major": major, "minor": minor, "patch": patch, "prerelease": "", "url": url,
        "sha256": archive["sha256"], "variant": None, "build": build}}))
    uv = ensure_uv(work)

    def beep() -> float:
        with tempfile.TemporaryDirectory() as home:
            env = {"PATH": "/usr/bin:/bin", "BEEP_HOST_HOME": home, "BEEP_PYTHON_CATALOG": str(catalog),
                   "BEEP_PYTHON_MIRROR": f"http://127.0.0.1:{port}"}
            return run([args.beep, "runtime", "install", version], env)

    def uv_install() -> float:
        with tempfile.TemporaryDirectory() as home:
            env = {"PATH": "/usr/bin:/bin", "HOME": home, "UV_PYTHON_INSTALL_DIR": f"{home}/py",
                   "UV_CACHE_DIR": f"{home}/cache", "UV_PYTHON_DOWNLOADS_JSON_URL": str(uv_json),
                   "UV_NO_CONFIG": "1"}
            return run([str(uv), "python", "install", "--no-bin", version], env)

    beep(), uv_install()  # warm the page cache for both
    times: dict[str, list[float]] = {"beep-host": [], "uv": []}
    for _ in range(args.rounds):
        times["beep-host"].append(beep())
        times["uv"].append(uv_install())
    server.shutdown()
    size = Path(archive["path"]).stat().st_size / 1e6
    print(f"runtime install, {size:.1f} MB archive from a loopback mirror, {args.rounds} rounds (median, min)")
    print(f"{'tool':<12}{'median':>10}{'min':>10}")
    for tool, ts in times.items():
        print(f"{tool:<12}{statistics.median(ts) * 1000:>8.0f}ms{min(ts) * 1000:>8.0f}ms")
    ratio = statistics.median(times["beep-host"]) / statistics.median(times["uv"])
    print(f"ratio beep-host / uv: {ratio:.2f} (goal <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
