"""Build a python-build-standalone-shaped archive from this machine's CPython.

The machine's interpreter is copied without tests, caches, site-packages contents and
static libraries; its RUNPATHs are made relative with patchelf so the copy runs from
any place; everything goes under a top directory `python/`, as in real
python-build-standalone `install_only_stripped` archives.

Usage: make_pbs_archive.py --out DIR [--python EXE] [--build 20990101]
Prints one JSON object: {"version", "triple", "build", "archives": {"tar.gz": {"name",
"path", "sha256"}, "zip": {...}}}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

SKIP_DIRS = {
    "test",
    "tests",
    "idle_test",
    "__pycache__",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
}


def probe(python: str) -> dict:
    code = (
        "import sys, sysconfig, json;"
        "print(json.dumps({'prefix': sys.base_prefix, 'version': '%d.%d.%d' % sys.version_info[:3],"
        "'ldlibrary': sysconfig.get_config_var('LDLIBRARY') or '', 'multiarch': sysconfig.get_config_var('MULTIARCH') or ''}))"
    )
    return json.loads(subprocess.check_output([python, "-I", "-S", "-c", code]))


def copy_prefix(src: Path, dst: Path, minor: str) -> None:
    (dst / "bin").mkdir(parents=True)
    for name in (f"python{minor}", "python3", "python"):
        p = src / "bin" / name
        if p.is_symlink():
            os.symlink(os.readlink(p), dst / "bin" / name)
        elif p.exists():
            shutil.copy2(p, dst / "bin" / name)
    lib_src, lib_dst = src / "lib", dst / "lib"
    lib_dst.mkdir()
    for entry in lib_src.iterdir():
        if entry.name.startswith("libpython") and entry.suffix != ".a":
            if entry.is_symlink():
                os.symlink(os.readlink(entry), lib_dst / entry.name)
            else:
                shutil.copy2(entry, lib_dst / entry.name)
    stdlib = f"python{minor}"

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {
            n for n in names if n in SKIP_DIRS or n.endswith(".a") or n.endswith(".pyc")
        }
        if Path(directory).name == "site-packages":
            skipped |= {n for n in names if n != "README.txt"}
        if Path(directory).name == stdlib:
            skipped |= {n for n in names if n.startswith("config-")}
        return skipped

    shutil.copytree(lib_src / stdlib, lib_dst / stdlib, symlinks=True, ignore=ignore)


def patch_runpaths(root: Path, minor: str) -> None:
    exe = root / "bin" / f"python{minor}"
    subprocess.check_call(["patchelf", "--set-rpath", "$ORIGIN/../lib", str(exe)])
    for lib in (root / "lib").glob("libpython*.so*"):
        if not lib.is_symlink():
            subprocess.check_call(["patchelf", "--set-rpath", "$ORIGIN", str(lib)])
    for so in (root / "lib" / f"python{minor}" / "lib-dynload").glob("*.so"):
        out = subprocess.run(
            ["patchelf", "--print-rpath", str(so)],
            capture_output=True,
            text=True,
            check=True,
        )
        if out.stdout.strip():
            subprocess.check_call(["patchelf", "--remove-rpath", str(so)])


def pbs_build_config(root: Path, old_prefix: str, minor: str) -> None:
    """Record the build-time configuration the way python-build-standalone does: prefix
    `/install`, `ar` and `clang` of the build machine, and a pkg-config file."""
    for data in (root / "lib" / f"python{minor}").glob("_sysconfigdata_*.py"):
        text = data.read_text()
        text = text.replace(f"'{old_prefix}'", "'/install'").replace(
            f"{old_prefix}/", "/install/"
        )
        text = re.sub(r"'CC': '[^ ']+", "'CC': 'clang", text)
        text = re.sub(r"'AR': '[^']*'", "'AR': '/tools/llvm/bin/llvm-ar'", text)
        data.write_text(text)
    pkgconfig = root / "lib" / "pkgconfig"
    pkgconfig.mkdir(exist_ok=True)
    (pkgconfig / f"python-{minor}.pc").write_text(
        f"prefix=/install\nlibdir=${{prefix}}/lib\nName: Python\nVersion: {minor}\n"
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_zip(staging: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(staging.rglob("*")):
            arc = path.relative_to(staging).as_posix()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                info = zipfile.ZipInfo(arc)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, os.readlink(path))
            elif path.is_dir():
                info = zipfile.ZipInfo(arc + "/")
                info.create_system = 3
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            else:
                zf.write(path, arc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--build", default="20990101")
    args = parser.parse_args()

    info = probe(args.python)
    version = info["version"]
    minor = ".".join(version.split(".")[:2])
    triple = f"{os.uname().machine}-unknown-linux-gnu"
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"cpython-{version}+{args.build}-{triple}-install_only_stripped"
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        staging = Path(tmp)
        root = staging / "python"
        copy_prefix(Path(info["prefix"]), root, minor)
        patch_runpaths(root, minor)
        pbs_build_config(root, info["prefix"], minor)
        archives = {}
        tar_path = args.out / f"{stem}.tar.gz"
        with tarfile.open(tar_path, "w:gz", compresslevel=6) as tf:
            tf.add(root, arcname="python")
        zip_path = args.out / f"{stem}.zip"
        write_zip(staging, zip_path)
        for kind, path in (("tar.gz", tar_path), ("zip", zip_path)):
            archives[kind] = {
                "name": path.name,
                "path": str(path),
                "sha256": sha256(path),
            }
    print(
        json.dumps(
            {
                "version": version,
                "triple": triple,
                "build": args.build,
                "archives": archives,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
