#!/usr/bin/env bash
# GUI benchmark (not a test): first content, idle memory, CPU of the live Backends page.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd ui && npx vite build --logLevel warn)
cargo build -p beep-host -p beep-host-gui
APP="$PWD/target/debug/beep-host-gui" CLI="$PWD/target/debug/beep-host" xvfb-run -a node ui/e2e/bench.mjs
