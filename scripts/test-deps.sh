#!/usr/bin/env bash
# Installs what fasttrack's integration tests run against, if missing: a real syslog-ng
# (Debian's syslog-ng-core, with syslog-ng-ctl), GNU time, strace (the fault-injection suite,
# tests/faults.rs), promtool (Debian's prometheus), prometheus-node-exporter, and the
# S3-compatible server s3s-fs; faketime for check's clock-skew test; and what the package tests
# run: rpm, dnf and createrepo-c (packaging/check.sh), dpkg-dev and lintian
# (packaging/check-deb.sh), mmdebstrap and systemd-container (packaging/root-test.sh).
# Sourced by scripts/test.sh, scripts/soak.sh and scripts/faults.sh; run as root on Debian.
export PATH="${HOME:-/root}/.cargo/bin:$PATH"
missing=()
command -v syslog-ng >/dev/null 2>&1 || missing+=(syslog-ng-core)
[ -x /usr/bin/time ] || missing+=(time)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v dnf >/dev/null 2>&1 || missing+=(dnf)
command -v createrepo_c >/dev/null 2>&1 || missing+=(createrepo-c)
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  # The prometheus packages start their services from postinst (a Prometheus server and an
  # exporter listening on every address). The tests only need promtool and the exporter's
  # binary, started by the tests themselves on 127.0.0.1: forbid starting services during the
  # install (policy-rc.d, which invoke-rc.d and deb-systemd-invoke honour) unless the host
  # already has such a policy, and stop whatever started anyway.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$own_policy" ] && rm -f "$policy"
  for svc in prometheus prometheus-node-exporter; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
    # Without systemd, a daemon started by an init script (as the package's user prometheus,
    # never a test's own exporter): stop it by its pid.
    for pid in $(pgrep -u prometheus -f "^/usr/bin/$svc( |$)" 2>/dev/null); do
      echo "== stopping $svc (pid $pid) started by its package"
      kill "$pid" 2>/dev/null || true
    done
  done
fi
# A real S3-compatible server that checks SigV4 (the newest s3s-fs needs a newer rustc).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "== installing s3s-fs 0.14.1 (cargo install, a few minutes once)"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi
