#!/usr/bin/env bash
# Installs what fasttrack's integration tests run against, if missing: a real syslog-ng
# (Debian's syslog-ng-core, with syslog-ng-ctl), GNU time, strace (the fault-injection suite,
# tests/faults.rs), and the S3-compatible server s3s-fs.
# Sourced by scripts/test.sh, scripts/soak.sh and scripts/faults.sh; run as root on Debian.
export PATH="${HOME:-/root}/.cargo/bin:$PATH"
missing=()
command -v syslog-ng >/dev/null 2>&1 || missing+=(syslog-ng-core)
[ -x /usr/bin/time ] || missing+=(time)
command -v strace >/dev/null 2>&1 || missing+=(strace)
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
