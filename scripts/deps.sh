#!/usr/bin/env bash
# Install what building and testing need, skipping what is already there.
# Debian/Ubuntu: system packages through apt-get (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential pkg-config patchelf python3 python3-venv python3-pip curl)
# The desktop app: WebKitGTK to build it; Xvfb, WebKitWebDriver, X tools and ImageMagick to test it headless.
APT_PACKAGES+=(libwebkit2gtk-4.1-dev xvfb xauth webkit2gtk-driver imagemagick x11-utils)
# The package tests unpack the .rpm beside the .deb.
APT_PACKAGES+=(rpm2cpio cpio)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: installing Rust with rustup" >&2
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
  . "$HOME/.cargo/env"
fi

# The UI needs Node 20.19+ (vite 8): Debian 12 ships 18, so take a newer one from npm.
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  echo "deps: installing Node 20 from the npm registry" >&2
  npm install -g --loglevel=error node@20
  hash -r
fi
# Drives the app in the end-to-end test.
if [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "deps: installing tauri-driver" >&2
  cargo install tauri-driver --version '^2' --locked
fi

# The Python test environment: pytest, ruff, grpcio and friends for python/tests.
if [ ! -x .venv-test/bin/python ] || ! cmp -s python/requirements-test.txt .venv-test/requirements-test.txt; then
  echo "deps: preparing .venv-test" >&2
  rm -rf .venv-test
  python3 -m venv .venv-test
  .venv-test/bin/pip install -q --disable-pip-version-check -r python/requirements-test.txt
  cp python/requirements-test.txt .venv-test/requirements-test.txt
fi
