#!/usr/bin/env bash
# Install what building and testing need, skipping what is already there.
# Debian/Ubuntu: system packages through apt-get (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential pkg-config patchelf python3 python3-venv python3-pip curl)

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

# The Python test environment: pytest, ruff, grpcio and friends for python/tests.
if [ ! -x .venv-test/bin/python ] || ! cmp -s python/requirements-test.txt .venv-test/requirements-test.txt; then
  echo "deps: preparing .venv-test" >&2
  rm -rf .venv-test
  python3 -m venv .venv-test
  .venv-test/bin/pip install -q --disable-pip-version-check -r python/requirements-test.txt
  cp python/requirements-test.txt .venv-test/requirements-test.txt
fi
