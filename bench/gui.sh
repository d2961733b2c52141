#!/usr/bin/env bash
# GUI benchmark (not a test): first content, idle memory, CPU of the live Backends page.
# Measures the release build, the one users run (scripts/run.sh, the .deb).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd ui && npx vite build --logLevel warn)
cargo build --release --locked -p beep-host -p beep-host-gui
cargo build --release --locked -p beep-host-gui --example webview_floor
APP="$PWD/target/release/beep-host-gui" CLI="$PWD/target/release/beep-host" \
  FLOOR="$PWD/target/release/examples/webview_floor" \
  xvfb-run -a -s "-screen 0 1280x900x24" node ui/e2e/bench.mjs
