#!/usr/bin/env python3
"""Project benchmarks, side by side in one run.

    python3 bench/project.py [--runs N] [--profile release|debug]

Measures, offline (a managed runtime built from this machine's CPython with
tests/support/make_pbs_archive.py and served from a file:// mirror; packages from a local
wheel folder; one warm uv cache):

- creating an environment: `beep-host venv create` (written in-process) vs `uv venv`;
- `beep-host up` with nothing to do;
- `beep-host up` for a project whose packages are in the cache (environment deleted,
  backends down) vs the same steps as separate `beep-host` commands (`venv create`,
  `pkg install`, two `start --detach`) vs the environment part alone with uv
  (`uv venv` + `uv pip sync beep.lock`, and `uv sync` of an equivalent uv project).

Prints a table of medians (and minimums) and writes it to bench/project-results.md.
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
BUILD = "20990101"
PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download"

WHEELS = r"""
import base64, hashlib, sys, zipfile
def wheel(out, name, version, deps=()):
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (name, version, "".join(f"Requires-Dist: {d}\n" for d in deps)),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
for i in range(20):
    wheel(sys.argv[1], f"pkg{i}", "1.0")
wheel(sys.argv[1], "alpha", "1.0", ["beta"] + [f"pkg{i}" for i in range(20)])
wheel(sys.argv[1], "beta", "2.0")
"""


def run(cmd, env, cwd=None):
    out = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"failed: {cmd}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def timed(cmd, env, cwd=None):
    start = time.perf_counter()
    run(cmd, env, cwd)
    return time.perf_counter() - start


def ms(samples):
    return statistics.median(samples) * 1000, min(samples) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--profile", choices=["release", "debug"], default="release")
    parser.add_argument(
        "--no-build", action="store_true", help="use the binary as it is"
    )
    args = parser.parse_args()
    if not args.no_build:
        print(f"building the {args.profile} binary...", file=sys.stderr)
        build = ["cargo", "build", "-q", "-p", "beep-host"]
        if args.profile == "release":
            build.append("--release")
        subprocess.run(build, cwd=ROOT, check=True)
    bin_ = ROOT / "target" / args.profile / "beep-host"
    work = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))
    try:
        bench(args, bin_, work)
    finally:
        # Whatever happened, no daemon or backend of the bench is left running.
        subprocess.run(
            [str(bin_), "daemon", "stop"],
            env=dict(os.environ, BEEP_HOST_HOME=str(work / "h")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(work, ignore_errors=True)


def bench(args, bin_, work):
    home = work / "h"
    env = dict(
        os.environ,
        BEEP_HOST_HOME=str(home),
        BEEP_HOST_INSTALLER="uv",
        UV_CACHE_DIR=str(work / "uv-cache"),
        UV_NO_INDEX="1",
        UV_FIND_LINKS=str(work / "wheels"),
        BEEP_HOST_DAEMON_IDLE="120",
    )
    env.pop("VIRTUAL_ENV", None)
    env.pop("RUST_LOG", None)

    # A managed runtime from a file:// mirror.
    manifest = json.loads(
        run(
            [
                sys.executable,
                ROOT / "tests/support/make_pbs_archive.py",
                "--out",
                work / "pbs",
                "--build",
                BUILD,
            ],
            env,
        )
    )
    version = manifest["version"]
    archive = manifest["archives"]["tar.gz"]
    (work / "mirror" / BUILD).mkdir(parents=True)
    shutil.copy(archive["path"], work / "mirror" / BUILD / archive["name"])
    import platform

    entry = {
        "version": version,
        "os": sys.platform if sys.platform != "darwin" else "darwin",
        "arch": platform.machine(),
        "libc": "gnu",
        "build": BUILD,
        "url": f"{PREFIX}/{BUILD}/{archive['name'].replace('+', '%2B')}",
        "sha256": archive["sha256"],
    }
    (work / "catalog.json").write_text(json.dumps({"entries": [entry]}))
    env["BEEP_PYTHON_CATALOG"] = str(work / "catalog.json")
    env["BEEP_PYTHON_MIRROR"] = (work / "mirror").as_uri()
    installed = json.loads(run([bin_, "runtime", "install", version, "--json"], env))
    key, python = installed["runtime"]["key"], installed["runtime"]["python"]
    run([bin_, "runtime", "default", key], env)

    # uv: BEEP_HOST_UV, else the one the tests provision, else uv on PATH (the test
    # runtime has no pip to provision one with).
    uv = (
        os.environ.get("BEEP_HOST_UV")
        or next(
            (str(p) for p in [ROOT / "target/tmp/beep-uv/bin/uv"] if p.exists()), None
        )
        or shutil.which("uv")
    )
    if not uv:
        sys.exit("no uv: set BEEP_HOST_UV (or run the tests once: they provision one)")
    env["BEEP_HOST_UV"] = uv
    run([bin_, "venv", "create", "warmup"], env)
    (work / "wheels").mkdir()
    run([sys.executable, "-c", WHEELS, work / "wheels"], env)

    rows = []

    # 1. Creating an environment.
    ours, theirs = [], []
    plain = work / "plain"
    plain.mkdir()
    for i in range(args.runs):
        ours.append(timed([bin_, "venv", "create", f"b{i}", "--runtime", key], env))
        theirs.append(
            timed(
                [uv, "venv", "--no-config", "-q", "--python", python, plain / f"u{i}"],
                env,
            )
        )
    rows.append(
        (
            "create an environment",
            "beep-host venv create (in-process)",
            ms(ours),
            "uv venv",
            ms(theirs),
        )
    )

    # 2. A project.
    project = work / "demo"
    project.mkdir()
    (project / "beep.toml").write_text(f'''[python]
version = "{version.rsplit(".", 1)[0]}"

[environment]
name = "demo"
requirements = ["alpha"]

[[backend]]
name = "pipe"
transport = "pipe"

[[backend]]
name = "http"
transport = "http"
''')
    run([bin_, "up"], env, cwd=project)
    noop = [timed([bin_, "up"], env, cwd=project) for _ in range(args.runs)]
    rows.append(("`up`, nothing to do", "beep-host up", ms(noop), None, None))

    up, separate = [], []
    requirements = work / "requirements.txt"
    requirements.write_text("alpha\n")
    for i in range(max(3, args.runs // 3)):
        run([bin_, "down"], env, cwd=project)
        run([bin_, "venv", "delete", "demo", "--yes"], env)
        up.append(timed([bin_, "up"], env, cwd=project))
        start = time.perf_counter()
        run([bin_, "venv", "create", f"s{i}"], env)
        run([bin_, "pkg", "install", f"s{i}", "-r", requirements], env)
        run([bin_, "start", "pipe", "--venv", f"s{i}", "--detach"], env)
        run([bin_, "start", "http", "--venv", f"s{i}", "--detach"], env)
        separate.append(time.perf_counter() - start)
        run([bin_, "stop", "--all"], env)
    rows.append(
        (
            "`up`, env deleted, packages cached, 2 backends",
            "beep-host up",
            ms(up),
            "venv create + pkg install -r + 2 × start --detach",
            ms(separate),
        )
    )

    # The environment part alone: up without backends vs uv.
    envonly = work / "envonly"
    envonly.mkdir()
    text = (project / "beep.toml").read_text()
    (envonly / "beep.toml").write_text(
        text[: text.index("[[backend]]")].replace('"demo"', '"envonly"')
    )
    run([bin_, "up"], env, cwd=envonly)
    pylock = work / "pylock.toml"
    shutil.copy(envonly / "beep.lock", pylock)
    uvproject = work / "uvproj"
    uvproject.mkdir()
    (uvproject / "pyproject.toml").write_text(
        f'[project]\nname = "uvproj"\nversion = "0"\nrequires-python = ">={version}"\ndependencies = ["alpha"]\n'
    )
    run([uv, "lock", "--python", python], env, cwd=uvproject)
    ours, sync_lock, sync_project = [], [], []
    for i in range(args.runs):
        run([bin_, "venv", "delete", "envonly", "--yes"], env)
        ours.append(timed([bin_, "up"], env, cwd=envonly))
        # One path, as `up` has (uv caches an interpreter's facts by its path).
        target = plain / "synced"
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        run([uv, "venv", "--no-config", "-q", "--python", python, target], env)
        run(
            [
                uv,
                "pip",
                "sync",
                "--no-config",
                "-q",
                "--preview-features",
                "pylock",
                "--python",
                target / "bin/python",
                pylock,
            ],
            env,
        )
        sync_lock.append(time.perf_counter() - start)
        shutil.rmtree(uvproject / ".venv", ignore_errors=True)
        sync_project.append(
            timed([uv, "sync", "-q", "--python", python], env, cwd=uvproject)
        )
    rows.append(
        (
            "environment from the lock (no backends)",
            "beep-host up",
            ms(ours),
            "uv venv + uv pip sync beep.lock",
            ms(sync_lock),
        )
    )
    rows.append(
        (
            "environment from the lock (no backends)",
            "beep-host up",
            ms(ours),
            "uv sync (uv project, uv.lock)",
            ms(sync_project),
        )
    )

    run([bin_, "down"], env, cwd=project)

    lines = [
        f"# Project benchmarks ({args.profile} build, {args.runs} runs, medians; min in brackets)",
        "",
        f"Python {version} (managed, from a file:// mirror), uv `{run([uv, '--version'], env).strip()}`,"
        " packages from a local wheel folder (22 wheels), warm uv cache.",
        "",
        "| operation | beep-host | ms | baseline | ms | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for op, ours_cmd, (med, low), base_cmd, base in rows:
        if base is None:
            lines.append(f"| {op} | {ours_cmd} | {med:.1f} ({low:.1f}) | | | |")
        else:
            lines.append(
                f"| {op} | {ours_cmd} | {med:.1f} ({low:.1f}) | {base_cmd} | "
                f"{base[0]:.1f} ({base[1]:.1f}) | {med / base[0]:.2f}x |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "project-results.md").write_text(text)


if __name__ == "__main__":
    main()
