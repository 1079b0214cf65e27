#!/usr/bin/env bash
# The .deb in a real Debian system: a bookworm root made with mmdebstrap, booted with
# systemd-nspawn, whose own syslog-ng (Debian's syslog-ng-core, its stock syslog-ng.conf and
# systemd unit) runs the installed snippet. Run as root on Debian:
#   packaging/root-test.sh [DEB]      (default: the fasttrack_*_amd64.deb in <repo>/target/deb,
#                                      built with build-deb.sh if there is none)
#
#  1. the root: mmdebstrap --variant=minbase with systemd-sysv, dbus, syslog-ng-core and
#     ca-certificates (fasttrack's Recommends), cached as a tarball under
#     ${CARGO_TARGET_DIR:-target}/root-cache, one per day (FASTTRACK_ROOT_CACHE overrides the
#     directory). No procps: like a minimal image, so `systemctl reload syslog-ng` cannot run
#     its /bin/kill and the postinst's fallback to syslog-ng-ctl is exercised;
#  2. apt-get install ./fasttrack_*.deb in the root before it boots (systemd-nspawn, no init):
#     the postinst must succeed with no syslog-ng running;
#  3. fasttrack.toml gets dest = "file:///var/tmp/shipped" and quiet = "2s"; the root boots
#     (systemd-nspawn --boot --private-network --register=no --keep-unit, in the background),
#     and syslog-ng starts `fasttrack watch` from the snippet;
#  4. apt-get install --reinstall with syslog-ng running: the postinst's reload starts a new
#     watch, the edited fasttrack.toml (a conffile) is kept;
#  5. a burst sent with logger to the snippet's Docker socket, /run/docker-syslog.sock, in
#     Docker's syslog-driver format: every line is shipped to /var/tmp/shipped exactly once;
#  6. fasttrack check exits 0 (every line OK), fasttrack status exits 0;
#  7. apt-get remove, then purge: syslog-ng keeps running and writing docker.log; purge removes
#     the state dir, the config and fasttrack's log, and leaves the rotated logs;
#  8. poweroff, then the root is removed. Processes are stopped by pid.
#
# It needs root and a kernel that lets systemd-nspawn boot a container. Where it cannot, it fails
# and says so; FASTTRACK_SKIP_ROOT_TESTS=1 skips it instead, with a message.
# shellcheck disable=SC2016 # the in_root sh -c '...' snippets expand their own variables.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
suite=bookworm
include=systemd-sysv,dbus,syslog-ng-core,ca-certificates
cache_dir=${FASTTRACK_ROOT_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/root-cache}

# shellcheck source=packaging/checks.sh
source "$here/checks.sh"
log() { printf '== %s\n' "$*" >&2; }
indent() { sed 's/^/    /'; }
# cannot REASON: this machine cannot run the test. Loud, and a failure unless skipping was asked.
cannot() {
  printf '\nFAIL: packaging/root-test.sh cannot run here: %s\n' "$*"
  printf 'FAIL: the .deb was NOT tested in a booted Debian root. Run as root where systemd-nspawn can\n'
  printf 'FAIL: boot a container, or set FASTTRACK_SKIP_ROOT_TESTS=1 to skip this test on purpose.\n'
  exit 1
}

if [ "${FASTTRACK_SKIP_ROOT_TESTS:-}" = 1 ]; then
  printf '\n!! SKIPPED: packaging/root-test.sh (FASTTRACK_SKIP_ROOT_TESTS=1): the .deb was NOT installed\n'
  printf '!! and booted in a Debian root; only packaging/check-deb.sh checked it.\n\n'
  exit 0
fi
[ "$(id -u)" -eq 0 ] || cannot "it must run as root (mmdebstrap, systemd-nspawn, nsenter)"

need_apt=()
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || need_apt+=(systemd-container)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null; }; then
    cannot "apt-get install ${need_apt[*]} failed"
  fi
fi

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(find "$repo/target/deb" -maxdepth 1 -name 'fasttrack_*_amd64.deb' 2>/dev/null | head -n1)
  if [ -z "$deb" ]; then
    bash "$here/build-deb.sh" "$repo/target/deb" >&2 || { echo "FAIL: build-deb.sh"; exit 1; }
    deb=$(find "$repo/target/deb" -maxdepth 1 -name 'fasttrack_*_amd64.deb' | head -n1)
  fi
fi
[ -f "$deb" ] || { echo "FAIL: no .deb at '$deb'"; exit 1; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

# --- the root -----------------------------------------------------------------------------------
# One tarball a day: reruns unpack it (seconds) instead of downloading ~100 packages again, and a
# new day picks up Debian's point releases and security updates.
mkdir -p "$cache_dir"
key=$(printf '%s %s' "$suite" "$include" | md5sum | cut -c1-8)
tarball=$cache_dir/$suite-minbase-$(date -u +%Y%m%d)-$key.tar
if [ ! -s "$tarball" ]; then
  log "mmdebstrap $suite ($include) -> $tarball"
  started=$SECONDS
  partial=${tarball%.tar}.partial.tar
  rm -rf "$partial"
  if ! mmdebstrap --quiet --format=tar --variant=minbase --include="$include" "$suite" "$partial" >&2; then
    rm -rf "$partial"
    echo "FAIL: mmdebstrap $suite (is a Debian mirror reachable? is this root?)"
    exit 1
  fi
  mv "$partial" "$tarball"
  log "mmdebstrap took $((SECONDS - started)) s"
  find "$cache_dir" -maxdepth 1 -name "$suite-minbase-*.tar" ! -name "$(basename "$tarball")" -exec rm -rf {} +
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/fasttrack-root-test.XXXXXX")
root=$work/root
nspawn_pid=
leader=
# Stop the container (poweroff, then SIGTERM to nspawn, which powers it off too, then SIGKILL to
# the container's init and nspawn), then remove the root unless something is still mounted in it.
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    [ -n "$leader" ] && kill -s RTMIN+4 "$leader" 2>/dev/null # systemd: poweroff
    wait_gone "$nspawn_pid" 30 || { kill -TERM "$nspawn_pid" 2>/dev/null; wait_gone "$nspawn_pid" 15; } ||
      {
        [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
        kill -KILL "$nspawn_pid" 2>/dev/null
        wait_gone "$nspawn_pid" 5
      }
  fi
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "root-test.sh: $root still has mounts; left in place" >&2
  else
    rm -rf "$work"
  fi
}
wait_gone() { # PID SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}
trap cleanup EXIT

log "unpacking $(basename "$tarball") into $root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball" || { echo "FAIL: cannot unpack $tarball"; exit 1; }
mkdir -p "$root/mnt/deb"
debname=$(basename "$deb")
nspawn_common=(-D "$root" --private-network --register=no --keep-unit --quiet
  "--bind-ro=$(dirname "$deb"):/mnt/deb")

# --- install before boot ------------------------------------------------------------------------
# apt resolves Depends and Recommends from the root's own packages (all in the tarball): no
# network is needed inside.
if ! out=$(systemd-nspawn "${nspawn_common[@]}" --chdir=/mnt/deb --setenv=DEBIAN_FRONTEND=noninteractive \
  apt-get install -y "./$debname" 2>&1); then
  if grep -qiE 'operation not permitted|permission denied|failed to .*namespace|not supported' <<<"$out"; then
    cannot "systemd-nspawn cannot start a container: $(tail -n1 <<<"$out")"
  fi
  fail "apt-get install ./$debname in the root, before boot"
  indent <<<"$out"
  exit 1
fi
ok "apt-get install ./$debname in the root before boot (no syslog-ng running): the postinst succeeds"
if grep -q '^fasttrack: ' <<<"$out"; then
  fail "the postinst said something with no syslog-ng running:"
  grep '^fasttrack: ' <<<"$out" | indent
fi
if [ "$(stat -c '%a %U:%G' "$root/var/lib/fasttrack" 2>&1)" = "750 root:root" ]; then
  ok "the postinst created /var/lib/fasttrack 0750 root:root"
else
  fail "/var/lib/fasttrack is $(stat -c '%a %U:%G' "$root/var/lib/fasttrack" 2>&1), not 750 root:root"
fi
if [ "$(stat -c '%a %U:%G' "$root/etc/fasttrack/fasttrack.toml")" = "640 root:root" ]; then
  ok "/etc/fasttrack/fasttrack.toml is 0640 root:root"
else
  fail "/etc/fasttrack/fasttrack.toml is $(stat -c '%a %U:%G' "$root/etc/fasttrack/fasttrack.toml")"
fi
if grep -qx '@include "/etc/syslog-ng/conf.d/\*.conf"' "$root/etc/syslog-ng/syslog-ng.conf"; then
  ok "Debian's syslog-ng.conf includes /etc/syslog-ng/conf.d/*.conf"
else
  fail "Debian's syslog-ng.conf does not include /etc/syslog-ng/conf.d/*.conf"
fi

# What an admin writes: where to ship, and a short quiet period for the test.
cat >>"$root/etc/fasttrack/fasttrack.toml" <<'EOF'

# root-test.sh
dest = "file:///var/tmp/shipped"
quiet = "2s"
EOF
mkdir -p "$root/var/tmp/shipped"

# --- boot ---------------------------------------------------------------------------------------
log "booting the root (systemd-nspawn --boot)"
systemd-nspawn "${nspawn_common[@]}" --boot --console=passive </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 100); do
  leader=$(pgrep -P "$nspawn_pid" -x systemd | head -n1)
  [ -n "$leader" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$leader" ]; then
  sed 's/^/    /' "$work/console.log"
  cannot "systemd-nspawn --boot did not start the root's systemd"
fi
in_root() { nsenter -t "$leader" -a "$@"; }
# Until systemd's own socket exists, systemctl cannot connect ("Failed to connect to bus"): ask
# again until it answers with a state boot does not leave by itself.
state=
for _ in $(seq 1 450); do
  state=$(in_root systemctl is-system-running 2>&1)
  case $state in running | degraded | maintenance | stopping | offline) break ;; esac
  sleep 0.2
done
if [ "$state" = running ]; then
  ok "the root booted: systemctl is-system-running says running"
else
  fail "the root booted to '$state', not running:"
  in_root systemctl --failed --no-pager --no-legend 2>&1 | indent
fi

# The running `fasttrack watch` processes of the root: "PID PPID" lines.
watches() {
  in_root sh -c 'for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = fasttrack ] || continue
    tr "\0" " " <"$p/cmdline" | grep -q "fasttrack watch" || continue
    echo "${p#/proc/} $(sed -n "s/^PPid:[[:space:]]*//p" "$p/status")"
  done'
}
syslog_ng_pid=$(in_root systemctl show -p MainPID --value syslog-ng.service)
wait_watch() { # [NOT_PID]: a watch whose parent is syslog-ng, other than NOT_PID
  local i pid ppid
  for ((i = 0; i < 100; i++)); do
    while read -r pid ppid; do
      [ "$ppid" = "$syslog_ng_pid" ] && [ "$pid" != "${1:-}" ] && { echo "$pid"; return 0; }
    done < <(watches)
    sleep 0.1
  done
  return 1
}
if watch_pid=$(wait_watch); then
  ok "syslog-ng (pid $syslog_ng_pid) runs the snippet's fasttrack watch (pid $watch_pid) at boot"
else
  fail "no fasttrack watch runs under syslog-ng (pid $syslog_ng_pid) after boot"
fi

# --- reinstall with syslog-ng running -----------------------------------------------------------
if out=$(in_root env DEBIAN_FRONTEND=noninteractive sh -c "cd /mnt/deb && apt-get install -y --reinstall ./$debname" 2>&1); then
  ok "apt-get install --reinstall with syslog-ng running"
else
  fail "apt-get install --reinstall with syslog-ng running:"
  indent <<<"$out"
fi
if grep -q '^fasttrack: ' <<<"$out"; then
  fail "the postinst could not reload syslog-ng:"
  grep '^fasttrack: ' <<<"$out" | indent
fi
if new_watch=$(wait_watch "${watch_pid:-}"); then
  ok "the postinst reloaded syslog-ng: a new watch (pid $new_watch) replaced pid ${watch_pid:-?}"
  watch_pid=$new_watch
else
  fail "no new watch after the reinstall (still: $(watches | tr '\n' ' '))"
fi
if grep -qx 'dest = "file:///var/tmp/shipped"' "$root/etc/fasttrack/fasttrack.toml"; then
  ok "the reinstall kept the edited fasttrack.toml (a conffile)"
else
  fail "the reinstall replaced the edited fasttrack.toml"
fi

# --- a burst through the Docker socket ----------------------------------------------------------
# Docker's syslog driver sends "<30>Dec  1 21:23:35 docker/NAME[PID]: text" (no hostname) to the
# socket; logger sends the same local format. Normal traffic first, then 5xx from two
# containers; each line carries a unique id=.
burst() {
  in_root sh -c '
    send() { logger --socket /run/docker-syslog.sock -t "docker/$1" --id="$2" -p daemon.info; }
    i=0; while [ $i -lt 40 ]; do i=$((i + 1)); echo "10.0.0.$i - - \"GET /ok/$i HTTP/1.1\" 200 512 id=ok-$i"; done | send shop-web 812
    i=0; while [ $i -lt 120 ]; do i=$((i + 1)); echo "10.0.1.$i - - \"POST /checkout HTTP/1.1\" 502 157 upstream timed out id=web-$i"; done | send shop-web 812
    i=0; while [ $i -lt 40 ]; do i=$((i + 1)); echo "10.0.2.$i - - \"GET /api/stock/$i HTTP/1.1\" 503 0 id=api-$i"; done | send shop-api 813'
}
if burst; then
  ok "sent 200 lines (40 normal, 160 5xx) with logger --socket /run/docker-syslog.sock"
else
  fail "logger --socket /run/docker-syslog.sock"
fi
shipped=
for _ in $(seq 1 300); do
  shipped=$(find "$root/var/tmp/shipped" -name 'docker.log-*.gz' 2>/dev/null | sort)
  [ -n "$shipped" ] && break
  sleep 0.1
done
if [ -z "$shipped" ]; then
  fail "nothing shipped to /var/tmp/shipped within 30 s; fasttrack's log:"
  sed 's/^/    /' "$root/var/log/fasttrack.log" 2>/dev/null
else
  ok "shipped within 30 s: ${shipped//$root/}"
  # Every line once, in the order sent, across whatever was shipped.
  expected=$(
    for i in $(seq 1 40); do echo "ok-$i"; done
    for i in $(seq 1 120); do echo "web-$i"; done
    for i in $(seq 1 40); do echo "api-$i"; done
  )
  # shellcheck disable=SC2086 # one argument per shipped file
  got=$(zcat $shipped | grep -o 'id=[a-z]*-[0-9]*$' | cut -d= -f2)
  if [ "$got" = "$expected" ]; then
    ok "every one of the 200 lines is in the shipped log exactly once, in order"
  else
    fail "the shipped log does not hold the 200 lines once each:"
    diff <(echo "$expected") <(echo "$got") | head -n 20 | indent
  fi
  # shellcheck disable=SC2086 # one argument per shipped file
  first=$(zcat $shipped | head -n1)
  if [[ "$first" =~ ^[A-Z][a-z]{2}\ [\ 0-9][0-9]\ [0-9:]{8}\ [^\ ]+\ docker/shop-web\[812\]:\ 10\.0\.0\.1\ .*id=ok-1$ ]]; then
    ok "lines are syslog-ng's docker.log format: $first"
  else
    fail "unexpected line format: $first"
  fi
  digest=${shipped%%$'\n'*}
  digest=${digest%.gz}.json
  if [ -f "$digest" ] && grep -q '"lines": *160' "$digest"; then
    ok "the shipped digest ($(basename "$digest")) counts the 160 incident lines"
  else
    fail "the digest $digest does not count 160 incident lines"
  fi
fi

# --- fasttrack check, status --------------------------------------------------------------------
out=$(in_root fasttrack check 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && ! grep -qE '^(FAIL|WARN)' <<<"$out"; then
  ok "fasttrack check exits 0, every line OK"
else
  fail "fasttrack check exits $rc (or warns)"
fi
indent <<<"$out"
if grep -qE "^OK +syslog-ng pid: $syslog_ng_pid" <<<"$out"; then
  ok "check finds syslog-ng's pid from Debian's pidfile (/var/lib/syslog-ng/syslog-ng.pid under systemd)"
else
  fail "check does not find syslog-ng's pid (pidfile)"
fi
if out=$(in_root fasttrack status 2>&1); then
  ok "fasttrack status exits 0 (nothing pending)"
else
  fail "fasttrack status:"
  indent <<<"$out"
fi

# --- remove, purge ------------------------------------------------------------------------------
docker_line() { # ID: send one normal line, then wait for it in /var/log/docker.log
  in_root sh -c "echo 'GET / HTTP/1.1 200 1 id=$1' | logger --socket /run/docker-syslog.sock -t docker/shop-web -p daemon.info"
  for _ in $(seq 1 50); do
    grep -q "id=$1\$" "$root/var/log/docker.log" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
syslog_line() { # ID: a line through Debian's own source (/dev/log) reaches /var/log/syslog
  in_root logger -t root-test "id=$1"
  for _ in $(seq 1 50); do
    grep -qE "root-test(\[[0-9]+\])?: id=$1\$" "$root/var/log/syslog" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
if out=$(in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y fasttrack 2>&1); then
  ok "apt-get remove fasttrack"
else
  fail "apt-get remove fasttrack:"
  indent <<<"$out"
fi
sleep 0.5
if [ -z "$(watches)" ]; then
  ok "no fasttrack watch runs after the remove (the postrm reloaded syslog-ng)"
else
  fail "a watch still runs after the remove: $(watches | tr '\n' ' ')"
fi
if [ -f "$root/etc/fasttrack/fasttrack.toml" ] && [ -f "$root/etc/syslog-ng/conf.d/fasttrack.conf" ] &&
  [ -d "$root/var/lib/fasttrack" ]; then
  ok "remove keeps the conffiles and the state dir"
else
  fail "remove deleted a conffile or the state dir"
fi
if [ "$(in_root systemctl is-active syslog-ng 2>&1)" = active ] && docker_line removed; then
  ok "after the remove syslog-ng is active and still writes docker.log"
else
  fail "after the remove syslog-ng is not active or does not write docker.log"
fi

if out=$(in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y fasttrack 2>&1); then
  ok "apt-get purge fasttrack"
else
  fail "apt-get purge fasttrack:"
  indent <<<"$out"
fi
left=$(for p in /var/lib/fasttrack /etc/fasttrack /etc/syslog-ng/conf.d/fasttrack.conf /var/log/fasttrack.log; do
  [ -e "$root$p" ] && echo "$p"
done)
if [ -z "$left" ]; then
  ok "purge removes the state dir, /etc/fasttrack, the snippet and fasttrack.log"
else
  fail "purge left: $left"
fi
rotated=$(find "$root/var/log" -maxdepth 1 -name 'docker.log-*.gz' -printf '/var/log/%f ')
if [ -n "$rotated" ]; then
  ok "purge leaves the rotated logs: $rotated"
else
  fail "purge removed the rotated logs"
fi
# After a reload without the snippet, STATS marks "destination;d_fasttrack;;o;..." orphaned
# while its queue's "dst.program;d_fasttrack#0;...;a;..." rows stay active (docs/syslog-ng.md).
if [ "$(in_root systemctl is-active syslog-ng 2>&1)" = active ] && syslog_line purged; then
  ok "after the purge syslog-ng is active and logs as before (a logger line reaches /var/log/syslog)"
else
  fail "after the purge syslog-ng is not active, or a logger line does not reach /var/log/syslog:"
  tail -n 5 "$root/var/log/syslog" 2>&1 | indent
fi
if [ -z "$(watches)" ] && ! in_root syslog-ng-ctl stats 2>/dev/null | grep -q '^destination;d_fasttrack;;a;'; then
  ok "after the purge no watch runs and syslog-ng's fasttrack destination is gone"
else
  fail "after the purge a watch runs ($(watches | tr '\n' ' ')) or d_fasttrack is active:"
  in_root syslog-ng-ctl stats 2>&1 | grep -E 'fasttrack' | indent
fi

if [ "$failures" -gt 0 ]; then
  echo "--- fasttrack.log, syslog-ng's journal and the console, for the failures above:"
  sed 's/^/    /' "$root/var/log/fasttrack.log" 2>/dev/null
  in_root journalctl -u syslog-ng --no-pager 2>&1 | tail -n 30 | indent
  tail -n 30 "$work/console.log" | indent
fi

summary
