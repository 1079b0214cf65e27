#!/usr/bin/env bash
# Installs what fasttrack's tests need and runs them all: formatting, clippy, unit tests and
# the integration tests against a real syslog-ng and a real S3-compatible server (s3s-fs) on
# loopback. Run as root on Debian: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="${HOME:-/root}/.cargo/bin:$PATH"

# Debian packages: a real syslog-ng (and syslog-ng-ctl), GNU time for the memory measurements.
missing=()
command -v syslog-ng >/dev/null 2>&1 || missing+=(syslog-ng-core)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A real S3-compatible server that checks SigV4 (the newest s3s-fs needs a newer rustc).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "== installing s3s-fs 0.14.1 (cargo install, a few minutes once)"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== SELinux module: build, link into a copy of Debian's policy store, sesearch assertions"
bash selinux/check.sh
echo "== RPMs: glibc 2.28 build, rpmbuild, rpmlint, install into a scratch root, rpm -V, man page"
bash packaging/check.sh
echo "== cargo test"
cargo test 2>&1
