#!/usr/bin/env bash
# Stage what the .deb ships besides the app (see `bundle.linux.deb.files` in
# src-tauri/tauri.conf.json): the `beep-host` CLI (also the daemon the app starts, found
# beside it) and the `beep_backend` package, precompiled as python/PROTOCOL.md advises.
# Run before `tauri build --bundles deb` (scripts/test-gui.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p beep-host --bin beep-host
stage=target/deb-stage
rm -rf "$stage"
mkdir -p "$stage/python"
cp target/release/beep-host "$stage/beep-host"
(cd python && tar --exclude=__pycache__ --exclude='*.pyc' -cf - beep_backend) | tar -xf - -C "$stage/python"
python3 -m compileall -q "$stage/python/beep_backend"
echo "stage-deb: staged $(find "$stage" -type f | wc -l) files in $stage" >&2
