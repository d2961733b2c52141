"""Benchmark: bring one project up three ways, side by side, in one run, each round in a
fresh home with one warm uv cache:

  1. `beep-host up --bundle app.zip` with every index and mirror on a closed port;
  2. `beep-host up` online, the runtime from a warm local HTTP mirror and the packages
     from the lock's local wheels;
  3. `uv venv` + `uv pip install --no-index --find-links` of the same wheels (with an
     interpreter already on disk: no runtime install at all).

The project declares no backend, so the three do the same work (runtime, environment,
packages); starting backends is measured by bench/daemon.py.

Usage: python3 bench/bundle.py [--rounds 5] [--beep target/release/beep-host] [--wheels 2]
Needs: patchelf (for the test archive), network access to PyPI once (to get uv).
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GITHUB = "https://github.com/astral-sh/python-build-standalone/releases/download"
CLOSED = "http://127.0.0.1:1"


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


def build_wheel(folder: Path, name: str, version: str) -> Path:
    """A small pure wheel: one module plus a 200 KB data file (some bytes to move)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {name!r}\n".encode(),
        f"{name}/data.bin": hashlib.sha256(name.encode()).digest() * 6400,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in files.items():
            z.writestr(member, data)
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(data).digest())
                .rstrip(b"=")
                .decode()
            )
            record += f"{member},sha256={digest},{len(data)}\n"
        record += f"{dist}/RECORD,,\n"
        z.writestr(f"{dist}/RECORD", record)
    return path


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--beep", default=str(ROOT / "target/release/beep-host"))
    parser.add_argument("--wheels", type=int, default=2)
    args = parser.parse_args()

    work = ROOT / "bench" / "out" / "bundle"
    work.mkdir(parents=True, exist_ok=True)
    fixture_dir = ROOT / "bench" / "out" / "pbs"
    if not (fixture_dir / "fixture.json").exists():
        out = subprocess.check_output(
            [
                sys.executable,
                str(ROOT / "tests/support/make_pbs_archive.py"),
                "--out",
                str(fixture_dir),
            ]
        )
        (fixture_dir / "fixture.json").write_bytes(out)
    fx = json.loads((fixture_dir / "fixture.json").read_text())
    archive = fx["archives"]["tar.gz"]
    version, build = fx["version"], fx["build"]
    mirror = work / "mirror"
    (mirror / build).mkdir(parents=True, exist_ok=True)
    shutil.copy(archive["path"], mirror / build / archive["name"])
    server, port = serve(mirror)
    catalog = work / "catalog.json"
    arch = "x86_64" if "x86_64" in fx["triple"] else "aarch64"
    catalog.write_text(
        json.dumps(
            {
                "entries": [
                    {
                        "version": version,
                        "os": "linux",
                        "arch": arch,
                        "libc": "gnu",
                        "build": build,
                        "url": f"{GITHUB}/{build}/{archive['name'].replace('+', '%2B')}",
                        "sha256": archive["sha256"],
                    }
                ]
            }
        )
    )
    wheels = work / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir()
    names = [f"pkg{i}" for i in range(args.wheels)]
    for name in names:
        build_wheel(wheels, name, "1.0")

    uv = ensure_uv(ROOT / "bench" / "out")
    uv_cache = work / "uv-cache"
    base = {
        **os.environ,
        "BEEP_PYTHON_CATALOG": str(catalog),
        "BEEP_PYTHON_MIRROR": f"http://127.0.0.1:{port}",
        "BEEP_HOST_INSTALLER": "uv",
        "BEEP_HOST_UV": str(uv),
        "UV_CACHE_DIR": str(uv_cache),
    }
    base.pop("VIRTUAL_ENV", None)
    project = work / "app"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    minor = version.rsplit(".", 1)[0]
    requirements = ", ".join(f'"{n}"' for n in names)
    (project / "beep.toml").write_text(
        f'[python]\nversion = "{minor}"\n\n[environment]\nname = "app"\nrequirements = [{requirements}]\n'
    )
    setup_home = Path(tempfile.mkdtemp(prefix="bh-bench-"))
    env = {
        **base,
        "BEEP_HOST_HOME": str(setup_home),
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheels),
    }
    run([args.beep, "lock", str(project)], env)
    bundle = work / "app.zip"
    run([args.beep, "bundle", str(project), "-o", str(bundle)], env)
    # Warm the uv cache and get an interpreter on disk for the uv baseline.
    run([args.beep, "up", str(project)], env)
    runtime_python = next(
        (setup_home / "data" / "runtimes").glob("cpython-*/bin/python3")
    )

    offline = {
        **base,
        "BEEP_PYTHON_MIRROR": CLOSED,
        "BEEP_PYTHON_CATALOG": f"{CLOSED}/catalog.json",
        "UV_INDEX_URL": f"{CLOSED}/simple",
        "UV_DEFAULT_INDEX": f"{CLOSED}/simple",
        "PIP_INDEX_URL": f"{CLOSED}/simple",
    }
    times: dict[str, list[float]] = {"bundle": [], "online": [], "uv": []}
    for _ in range(args.rounds):
        for kind in times:
            home = Path(tempfile.mkdtemp(prefix="bh-bench-"))
            target = Path(tempfile.mkdtemp(prefix="bh-proj-")) / "app"
            try:
                if kind == "bundle":
                    e = {**offline, "BEEP_HOST_HOME": str(home)}
                    times[kind].append(
                        run([args.beep, "up", "--bundle", str(bundle), str(target)], e)
                    )
                elif kind == "online":
                    shutil.copytree(project, target)
                    e = {**base, "BEEP_HOST_HOME": str(home)}
                    times[kind].append(run([args.beep, "up", str(target)], e))
                else:
                    e = {**offline, "BEEP_HOST_HOME": str(home)}
                    venv = home / "venv"
                    t = run(
                        [
                            str(uv),
                            "venv",
                            "--no-config",
                            "--quiet",
                            "--python",
                            str(runtime_python),
                            str(venv),
                        ],
                        e,
                    )
                    t += run(
                        [
                            str(uv),
                            "pip",
                            "install",
                            "--no-config",
                            "--quiet",
                            "--python",
                            str(venv / "bin" / "python"),
                            "--no-index",
                            "--find-links",
                            str(wheels),
                            *[f"{n}==1.0" for n in names],
                        ],
                        e,
                    )
                    times[kind].append(t)
            finally:
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(target.parent, ignore_errors=True)
    server.shutdown()
    shutil.rmtree(setup_home, ignore_errors=True)

    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    size = bundle.stat().st_size
    print(
        f"bundle: {size / 1e6:.1f} MB ({archive['name']} + {len(names)} wheels); rounds: {args.rounds}"
    )
    print()
    print("| way | what it does | median ms | vs `up --bundle` |")
    print("|---|---|---|---|")
    rows = [
        (
            "bundle",
            "`up --bundle` (verify zip, install runtime, env from wheels), network closed",
        ),
        (
            "online",
            "`up` online: runtime from a warm local mirror, env from the lock's local wheels",
        ),
        (
            "uv",
            "`uv venv` + `uv pip install --no-index --find-links` (runtime already on disk)",
        ),
    ]
    for kind, what in rows:
        print(
            f"| {kind} | {what} | {med[kind]:.0f} | {med[kind] / med['bundle']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
