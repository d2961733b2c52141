#!/usr/bin/env bash
# GUI tests: UI type check and unit tests, the bindings test, the end-to-end test of the
# real app under Xvfb, then the .deb and the .rpm (built, unpacked, started, seen to show a window).
# Called by scripts/test.sh after scripts/deps.sh; runs alone too.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$PATH"
start=$SECONDS
t() { echo "== gui: $1 ($((SECONDS - start))s)" >&2; }

# `npm ci` refuses this lock file with npm 11 (optional per-platform packages of
# @tauri-apps/cli); `npm install --no-save` installs exactly what the lock file pins.
t "npm install (from the lock file)"
(cd ui && npm install --no-save --no-audit --no-fund --loglevel=error)

t "ui: svelte-check, tsc, vitest"
(cd ui && npx svelte-check --tsconfig ./tsconfig.json --fail-on-warnings --threshold warning >/dev/null && npx tsc --noEmit && npx vitest run)

t "ui: build"
(cd ui && npx vite build --logLevel warn)

t "app: bindings test and debug build (embeds ui/dist)"
cargo test -p beep-host-gui --locked -- --test-threads 2
cargo build -p beep-host-gui --locked

t "e2e (tauri-driver + WebKitWebDriver under Xvfb)"
APP="$PWD/target/debug/beep-host-gui" xvfb-run -a -s "-screen 0 1280x900x24" node ui/e2e/run.mjs

if [ "${BEEP_GUI_SKIP_DEB:-}" != "1" ]; then
  t ".deb and .rpm: stage the CLI and beep_backend, tauri build --bundles deb,rpm"
  scripts/stage-deb.sh
  (cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles deb,rpm --ci)
  deb=$(ls -t target/release/bundle/deb/*.deb | head -1)
  t ".deb: unpack and start $deb"
  scripts/test-deb.sh "$deb"
  rpm=$(ls -t target/release/bundle/rpm/*.rpm | head -1)
  t ".rpm: unpack and start $rpm"
  scripts/test-deb.sh "$rpm"
fi
t "done"
