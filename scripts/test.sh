#!/usr/bin/env bash
# Run every test of the project: lints, Rust unit and integration tests, Python tests, GUI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== lint" >&2
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
.venv-test/bin/ruff check python
.venv-test/bin/ruff format --check python

echo "== rust tests" >&2
cargo test --workspace --locked -- --test-threads 2

echo "== python tests" >&2
.venv-test/bin/python -m pytest -q python/tests

echo "== windows (under Wine)" >&2
scripts/test-windows.sh
echo "== the desktop app, cross-checked for Windows" >&2
scripts/check-windows-app.sh

scripts/test-gui.sh
