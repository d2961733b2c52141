#!/usr/bin/env bash
# Build the Windows package: target/package/beep-host-<version>-x86_64-pc-windows-gnu.zip with
# one folder inside holding beep-host.exe (stripped) and python/beep_backend, where the
# exe finds it (an ancestor's `python/`, see python_package_dir). Prints the zip's path.
# Usage: scripts/package-windows.sh [--debug]   (default: a release build)
# The Wine test shim (bcryptprimitives.dll) is never put in the package.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
profile=release
[[ ${1:-} == --debug ]] && profile=debug
if [[ $profile == release ]]; then
    cargo build -q --release --locked --target "$TARGET" -p beep-host --bin beep-host >&2
else
    cargo build -q --locked --target "$TARGET" -p beep-host --bin beep-host >&2
fi
version=$(cargo pkgid -p beep-host | sed 's/.*[#@]//')
name="beep-host-$version-$TARGET"
out="$CARGO_TARGET_DIR/package"
stage="$out/$name"
rm -rf "$stage" "$out/$name.zip"
mkdir -p "$stage/python"
x86_64-w64-mingw32-strip -o "$stage/beep-host.exe" "$CARGO_TARGET_DIR/$TARGET/$profile/beep-host.exe"
# Sources only: bytecode is per CPython version, and the runtime the user picks writes its own.
(cd python && tar --exclude=__pycache__ --exclude='*.pyc' -cf - beep_backend) | tar -xf - -C "$stage/python"
cp LICENSE* README.md "$stage/" 2>/dev/null || true
python3 - "$out" "$name" <<'PY'
import os, sys, zipfile
out, name = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(os.path.join(out, name + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for root, _dirs, files in os.walk(os.path.join(out, name)):
        for f in sorted(files):
            path = os.path.join(root, f)
            z.write(path, os.path.relpath(path, out))
PY
rm -rf "$stage"
echo "$out/$name.zip"
