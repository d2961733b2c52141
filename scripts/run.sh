#!/usr/bin/env bash
# Install what is missing, build the UI and the desktop app, and start it.
# (The CLI: target/release/beep-host, built too.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
(cd ui && { [ -d node_modules ] || npm install --no-save --no-audit --no-fund --loglevel=error; } && npx vite build --logLevel warn)
cargo build --release --locked -p beep-host -p beep-host-gui
exec target/release/beep-host-gui "$@"
