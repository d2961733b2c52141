#!/usr/bin/env bash
# The desktop app compiles for Windows (`cargo check --target x86_64-pc-windows-gnu -p beep-host-gui`).
# It cannot run under Wine (no WebView2), so this is all the Windows proof the app gets here.
# Kept out of scripts/test-windows.sh, whose tests run the CLI, runtimes, environments and
# backends under Wine; run after it (the target and the mingw linker are in place by then).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
start=$(date +%s)
cargo check -q --locked --target x86_64-pc-windows-gnu -p beep-host-gui
echo "the desktop app checks for x86_64-pc-windows-gnu ($(($(date +%s) - start)) s)"
