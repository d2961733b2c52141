#!/usr/bin/env bash
# Install what is missing, build beep-host and run it (until the GUI lands: the configuration check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked
exec target/release/beep-host "${@:-config}"
