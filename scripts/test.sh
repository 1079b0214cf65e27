#!/usr/bin/env bash
# Installs what fasttrack's tests need and runs them all: formatting, clippy, unit tests and
# the integration tests against a real syslog-ng and a real S3-compatible server (s3s-fs) on
# loopback. Run as root on Debian: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/test-deps.sh
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== SELinux module: build, link into a copy of Debian's store and into the el9 policy (selinux/el9), the same assertions on both"
bash selinux/check.sh
echo "== RPMs: glibc 2.28 build, rpmbuild, rpmlint, rpm -V in a scratch root, dnf --installroot, man page"
bash packaging/check.sh
echo "== .deb: the same build, dpkg-deb, lintian, Depends against dpkg-shlibdeps"
bash packaging/check-deb.sh
echo "== .deb in a booted Debian root: apt install, syslog-ng runs the snippet, a burst is shipped, check"
bash packaging/root-test.sh
echo "== cargo test"
cargo test 2>&1
