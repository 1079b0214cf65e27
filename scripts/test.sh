#!/usr/bin/env bash
# Installs what fasttrack's tests need and runs them all: formatting, clippy, unit tests and
# the integration tests against a real syslog-ng. Run as root on Debian: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v syslog-ng >/dev/null 2>&1 || missing+=(syslog-ng-core)
command -v syslog-ng-ctl >/dev/null 2>&1 || missing+=(syslog-ng-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets 2>&1
