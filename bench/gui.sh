#!/usr/bin/env bash
# GUI benchmark (not a test): first content, idle memory, CPU of the live Backends page.
# Measures the release build, the one users run (scripts/run.sh, the .deb).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
(cd ui && npx vite build --logLevel warn)
cargo build --release --locked -p beep-host -p beep-host-gui
cargo build --release --locked -p beep-host-gui --example webview_floor
APP="$target/release/beep-host-gui" CLI="$target/release/beep-host" \
  FLOOR="$target/release/examples/webview_floor" \
  xvfb-run -a -s "-screen 0 1280x900x24" node ui/e2e/bench.mjs
