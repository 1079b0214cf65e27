#!/usr/bin/env bash
# shellcheck disable=SC2016 # the bash -c '...' snippets expand their own "$1".
# Builds the RPMs (packaging/build-rpm.sh) and checks them; prints "ok: ..." or "FAIL: ..."
# per check and exits 1 if any check failed. Runnable from any cwd:
#   packaging/check.sh [OUT_DIR]      (default: <repo>/target/rpm)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/target/rpm}
stage=${FASTTRACK_STAGE:-$repo/target/stage}
export FASTTRACK_STAGE=$stage
# The checks below must see the config files, not the caller's environment.
while IFS= read -r var; do unset "$var"; done < <(env | sed -n 's/^\(FASTTRACK_[A-Z_]*\)=.*/\1/p')

# shellcheck source=packaging/checks.sh
source "$here/checks.sh"

bash "$here/build-rpm.sh" "$out" || {
  fail "build-rpm.sh"
  exit 1
}
out=$(cd "$out" && pwd)
main_rpm=$(find "$out" -maxdepth 1 -name 'fasttrack-[0-9]*.x86_64.rpm' | head -n1)
selinux_rpm=$(find "$out" -maxdepth 1 -name 'fasttrack-selinux-[0-9]*.noarch.rpm' | head -n1)
if [ -z "$main_rpm" ] || [ -z "$selinux_rpm" ]; then
  fail "build-rpm.sh made fasttrack-*.x86_64.rpm and fasttrack-selinux-*.noarch.rpm in $out"
  exit 1
fi
ok "built $(basename "$main_rpm") and $(basename "$selinux_rpm")"

work=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- file lists ---------------------------------------------------------------------------------
has_lines() { # FILE LINE...: every LINE is a line of FILE
  local file=$1 missing=()
  shift
  for line in "$@"; do grep -qxF -- "$line" "$file" || missing+=("$line"); done
  [ ${#missing[@]} -eq 0 ] || {
    printf 'missing: %s\n' "${missing[@]}"
    echo "listed:"
    cat "$file"
    return 1
  }
}
rpm -qlp "$main_rpm" >"$work/main.list" 2>&1
check "rpm -qlp fasttrack lists the binary, config, snippet, man page, completions, state dir, alert rules, docs" \
  has_lines "$work/main.list" \
  /usr/bin/fasttrack \
  /etc/fasttrack \
  /etc/fasttrack/fasttrack.toml \
  /etc/syslog-ng/conf.d/fasttrack.conf \
  /usr/share/man/man1/fasttrack.1.gz \
  /usr/share/bash-completion/completions/fasttrack \
  /usr/share/zsh/site-functions/_fasttrack \
  /usr/share/fish/vendor_completions.d/fasttrack.fish \
  /var/lib/fasttrack \
  /usr/share/fasttrack \
  /usr/share/fasttrack/fasttrack.rules.yml \
  /usr/share/doc/fasttrack/README.md \
  /usr/share/doc/fasttrack/CHANGELOG.md \
  /usr/share/doc/fasttrack/status-json.md \
  /usr/share/doc/fasttrack/incident-index.md
rpm -qlp "$selinux_rpm" >"$work/selinux.list" 2>&1
check "rpm -qlp fasttrack-selinux lists the policy module and its interface" \
  has_lines "$work/selinux.list" \
  /usr/share/selinux/packages/targeted/fasttrack.pp.bz2 \
  /usr/share/selinux/devel/include/distributed/fasttrack.if

rpm -qp --requires "$main_rpm" >"$work/main.requires" 2>&1
check "fasttrack requires (fasttrack-selinux if selinux-policy-targeted)" \
  grep -qxF '(fasttrack-selinux if selinux-policy-targeted)' "$work/main.requires"

# --- scriptlets ---------------------------------------------------------------------------------
rpm -qp --scripts "$selinux_rpm" >"$work/selinux.scripts" 2>&1
post=$(sed -n '/^postinstall scriptlet/,/^[a-z]* *scriptlet/p' "$work/selinux.scripts")
check "fasttrack-selinux %post removes the old syslog-domaintrans-logrotate module" \
  grep -qF "semodule -l 2>/dev/null | grep -q '^syslog-domaintrans-logrotate' && semodule -r syslog-domaintrans-logrotate || :" <<<"$post"
check "fasttrack-selinux %post installs fasttrack.pp.bz2 (%selinux_modules_install)" \
  grep -qE 'semodule -n -s \$\{_policytype\} -X 200 -i /usr/share/selinux/packages/targeted/fasttrack\.pp\.bz2' <<<"$post"
check "fasttrack-selinux %pre/%preun/%postun/%posttrans relabel and uninstall" \
  bash -c 'f=$1
    grep -q "^preinstall scriptlet" "$f" && grep -q "^preuninstall scriptlet" "$f" &&
    grep -q "^postuninstall scriptlet" "$f" && grep -q "^posttrans scriptlet" "$f" &&
    grep -q "file_contexts.pre" "$f" && grep -q "fixfiles -C" "$f" &&
    grep -qE "semodule -n -X 200 -s \\$\{_policytype\} -r fasttrack" "$f"' _ "$work/selinux.scripts"
check "fasttrack-selinux scriptlets are valid sh" \
  bash -c 'rpm -qp --qf "%{PREIN}\n" "$1" | sh -n &&
    rpm -qp --qf "%{POSTIN}\n" "$1" | sh -n && rpm -qp --qf "%{PREUN}\n" "$1" | sh -n &&
    rpm -qp --qf "%{POSTUN}\n" "$1" | sh -n && rpm -qp --qf "%{POSTTRANS}\n" "$1" | sh -n' \
  _ "$selinux_rpm"

# --- config files -------------------------------------------------------------------------------
rpm -qp --configfiles "$main_rpm" >"$work/main.config" 2>&1
check "rpm -qp --configfiles lists fasttrack.toml and the syslog-ng snippet" \
  has_lines "$work/main.config" /etc/fasttrack/fasttrack.toml /etc/syslog-ng/conf.d/fasttrack.conf
check "both config files are %config(noreplace)" \
  bash -c '[ "$(rpm -qp --qf "[%{FILEFLAGS:fflags} %{FILENAMES}\n]" "$1" | grep -c "^cn /etc/")" -eq 2 ]' \
  _ "$main_rpm"

# --- rpmlint ------------------------------------------------------------------------------------
rpmlint -r "$here/rpmlintrc" "$main_rpm" "$selinux_rpm" "$here/fasttrack.spec" >"$work/rpmlint.out" 2>&1
summary=$(grep -E '[0-9]+ packages and [0-9]+ specfiles checked' "$work/rpmlint.out" | tail -n1)
if grep -qE ' 0 errors' <<<"$summary"; then
  ok "rpmlint (packaging/rpmlintrc): $summary"
else
  fail "rpmlint (packaging/rpmlintrc): ${summary:-no summary}"
  sed 's/^/    /' "$work/rpmlint.out"
fi
grep -E ': (W|E): ' "$work/rpmlint.out" | sed 's/^/    rpmlint: /'

# --- install into a scratch root ----------------------------------------------------------------
# --noscripts: the scriptlets need /bin/sh and semodule inside the root, which this empty root
# does not have; they are checked above (shape and sh -n) instead. --nodeps: the root has
# nothing to satisfy glibc, syslog-ng and selinux-policy.
root=$work/root
mkdir -p "$root"
rpmdb=(--root "$root" --dbpath "$root/rpmdb")
check "rpm -i --root --nodeps --noscripts installs both RPMs" \
  rpm -i "${rpmdb[@]}" --nodeps --noscripts "$main_rpm" "$selinux_rpm"
# --nodeps: the root has no glibc or syslog-ng to satisfy the dependencies; the files are verified.
check "rpm -V --nodeps fasttrack is clean in that root" rpm -V --nodeps "${rpmdb[@]}" fasttrack
check "rpm -V --nodeps fasttrack-selinux is clean in that root" rpm -V --nodeps "${rpmdb[@]}" fasttrack-selinux

check_mode() { # PATH WANT ("640 root:root")
  local got
  got=$(stat -c '%a %U:%G' "$root$1" 2>&1)
  if [ "$got" = "$2" ]; then ok "$1 is 0${2/ /, }"; else fail "$1 is $got, not $2"; fi
}
check_mode /etc/fasttrack/fasttrack.toml "640 root:root"
check_mode /var/lib/fasttrack "750 root:root"
check_mode /usr/bin/fasttrack "755 root:root"
check "the packaged fasttrack.toml is packaging/fasttrack.toml" \
  cmp "$root/etc/fasttrack/fasttrack.toml" "$here/fasttrack.toml"
check_mode /usr/share/fasttrack/fasttrack.rules.yml "644 root:root"
check "the packaged alert rules are packaging/fasttrack.rules.yml" \
  cmp "$root/usr/share/fasttrack/fasttrack.rules.yml" "$here/fasttrack.rules.yml"
check "the packaged syslog-ng snippet is syslog-ng/fasttrack.conf" \
  cmp "$root/etc/syslog-ng/conf.d/fasttrack.conf" "$repo/syslog-ng/fasttrack.conf"
check "the packaged policy module is a valid bzip2 file" \
  bzip2 -t "$root/usr/share/selinux/packages/targeted/fasttrack.pp.bz2"

# --- dnf --installroot from a local repository --------------------------------------------------
# What an admin does on RHEL, with dnf resolving the dependencies and rpm running the
# transaction in an empty root. No RHEL repository is reachable from here: the repository holds
# both RPMs and fasttrack-test-runtime (packaging/test-runtime.spec: this host's glibc and dash,
# and a stand-in "syslog-ng" provide), which dnf must pick to satisfy fasttrack's requirements.
if ! command -v dnf >/dev/null || ! command -v createrepo_c >/dev/null; then
  echo "== installing dnf createrepo-c (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnf createrepo-c >/dev/null
fi
repo_dir=$work/repo
dnf_root=$work/dnf-root
mkdir -p "$repo_dir" "$dnf_root"
dnf_install() {
  rpmbuild -bb --quiet --define "_topdir $work/runtime" "$here/test-runtime.spec" &&
    cp "$main_rpm" "$selinux_rpm" "$work"/runtime/RPMS/*/fasttrack-test-runtime-*.rpm "$repo_dir/" &&
    createrepo_c --quiet "$repo_dir" &&
    dnf -y --installroot="$dnf_root" --releasever=8 --setopt=reposdir=/dev/null \
      --repofrompath=local,"$repo_dir" --repo=local --nogpgcheck install fasttrack
}
check "dnf --installroot installs fasttrack from a createrepo_c repository, with its dependencies" dnf_install
check "dnf chose the test runtime for glibc and syslog-ng, and no fasttrack-selinux (no targeted policy)" \
  bash -c '[ "$(rpm --root "$1" -qa --qf "%{NAME}\n" | sort | tr "\n" " ")" = "fasttrack fasttrack-test-runtime " ]' \
  _ "$dnf_root"
check "rpm -V fasttrack is clean in the dnf root (dependencies resolved, no --nodeps)" \
  rpm --root "$dnf_root" -V fasttrack
check "fasttrack --version runs in the dnf root (chroot)" chroot "$dnf_root" /usr/bin/fasttrack --version
check "/var/lib/fasttrack is 0750 root:root in the dnf root" \
  bash -c '[ "$(stat -c "%a %U:%G" "$1/var/lib/fasttrack")" = "750 root:root" ]' _ "$dnf_root"
# --- fasttrack-selinux relabels what fasttrack uses (%posttrans) ---------------------------------
# In the dnf root, with a fake selinuxenabled (SELinux "on") and a fake restorecon that logs its
# arguments: rpm runs the real scriptlets in the chroot. No /etc/selinux/config there, so the
# module itself is not installed (that is %selinux_modules_install's business, checked above).
relabel_root() { # write the fakes, a config, a destination and logs into the dnf root
  local r=$dnf_root
  # /dev/null: the scriptlet's redirections need it, as on any booted system.
  mkdir -p "$r/usr/sbin" "$r/srv/incident logs" "$r/var/log" "$r/dev" &&
    { [ -c "$r/dev/null" ] || mknod -m 0666 "$r/dev/null" c 1 3; } &&
    printf '#!/bin/sh\nexit 0\n' >"$r/usr/sbin/selinuxenabled" &&
    printf '#!/bin/sh\necho "restorecon $*" >>/restorecon.calls\n' >"$r/usr/sbin/restorecon" &&
    chmod 0755 "$r/usr/sbin/selinuxenabled" "$r/usr/sbin/restorecon" &&
    touch "$r/var/log/docker.log" "$r/var/log/docker.log-1796000000.gz" &&
    printf '%s\n' '# dest = "file:///not/this"' 'region = "eu-west-1"' \
      '  dest   =  "file:///srv/incident logs"   # the team share' \
      '[[route]]' 'dest = "file:///nor/this"' >"$r/etc/fasttrack/fasttrack.toml"
}
relabel_calls() { # EXPECTED-LINE...: the fake's log is exactly these lines (then cleared)
  local got
  got=$(cat "$dnf_root/restorecon.calls" 2>/dev/null)
  rm -f "$dnf_root/restorecon.calls"
  [ "$got" = "$(printf '%s\n' "$@")" ] || {
    printf 'expected:\n%s\ngot:\n%s\n' "$(printf '%s\n' "$@")" "${got:-<no call>}"
    return 1
  }
}
relabelled=(
  "restorecon -R /usr/bin/fasttrack /etc/fasttrack /var/lib/fasttrack"
  "restorecon -R /var/log/docker.log"
  "restorecon -R /var/log/docker.log-1796000000.gz"
)
check "set up the dnf root for the relabel: fake selinuxenabled and restorecon, a file:// dest" relabel_root
check "rpm -i fasttrack-selinux runs its scriptlets in the root (--nodeps: no selinux-policy there)" \
  rpm -i --root "$dnf_root" --nodeps "$selinux_rpm"
check "%posttrans relabels the binary, config, state, docker.log* and the file:// dest of fasttrack.toml" \
  relabel_calls "${relabelled[@]}" "restorecon -R /srv/incident logs"
# The same scriptlet text again (rpm -qp --scripts), run in the chroot with other configs.
sed -n '/^posttrans scriptlet/,/^[a-z]* *scriptlet/p' "$work/selinux.scripts" | sed '1d;/scriptlet/d' \
  >"$dnf_root/posttrans.sh"
posttrans_with() { # TOML-LINE...: run %posttrans with this fasttrack.toml
  printf '%s\n' "$@" >"$dnf_root/etc/fasttrack/fasttrack.toml" && chroot "$dnf_root" /bin/sh /posttrans.sh
}
export -f relabel_calls posttrans_with
export dnf_root
check "%posttrans with dest = 'file:///srv/incident logs' (single quotes, no spaces around =)" \
  bash -c 'posttrans_with "dest='"'"'file:///srv/incident logs'"'"'" && relabel_calls "$@" "restorecon -R /srv/incident logs"' \
  _ "${relabelled[@]}"
check "%posttrans with an s3:// dest, a missing file:// dir, or no dest: only the installed paths" \
  bash -c 'posttrans_with "dest = \"s3://bucket/x\"" && posttrans_with "dest = \"file:///srv/gone\"" &&
    posttrans_with "#dest = \"file:///srv/incident logs\"" && relabel_calls "$@" "$@" "$@"' _ "${relabelled[@]}"
check "%posttrans without SELinux (selinuxenabled fails) relabels nothing" \
  bash -c 'printf "#!/bin/sh\nexit 1\n" >"$1/usr/sbin/selinuxenabled" && chroot "$1" /bin/sh /posttrans.sh &&
    [ ! -e "$1/restorecon.calls" ]' _ "$dnf_root"
check "rpm -e fasttrack-selinux, and the fakes removed, before removing fasttrack" \
  bash -c 'rpm -e --root "$1" --nodeps fasttrack-selinux &&
    rm -f "$1/usr/sbin/selinuxenabled" "$1/usr/sbin/restorecon" "$1/posttrans.sh" "$1/dev/null" \
      "$1/var/log/docker.log" "$1/var/log/docker.log-1796000000.gz" && rm -rf "$1/srv"' _ "$dnf_root"

check "dnf remove fasttrack removes the binary, the snippet and the empty state dir" \
  bash -c 'dnf -y -q --installroot="$1" --releasever=8 --setopt=reposdir=/dev/null remove fasttrack &&
    ! rpm --root "$1" -q fasttrack && [ ! -e "$1/usr/bin/fasttrack" ] &&
    [ ! -e "$1/etc/syslog-ng/conf.d/fasttrack.conf" ] && [ ! -e "$1/var/lib/fasttrack" ]' _ "$dnf_root"

# --- the binary ---------------------------------------------------------------------------------
bin=$root/usr/bin/fasttrack
glibc_max=$(objdump -T "$bin" 2>/dev/null | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' |
  sed 's/GLIBC_//' | sort -uV | tail -n1)
if [ -z "$glibc_max" ]; then
  fail "objdump -T $bin shows no GLIBC_ symbol versions"
elif [ "$(printf '%s\n' "$glibc_max" 2.28 | sort -V | tail -n1)" = 2.28 ]; then
  ok "objdump -T: newest GLIBC_ symbol version is $glibc_max (<= 2.28)"
else
  fail "objdump -T: needs GLIBC_$glibc_max (> 2.28):"
  objdump -T "$bin" | grep -E "GLIBC_$glibc_max" | sed 's/^/    /'
fi
check "the packaged binary runs (fasttrack --version)" "$bin" --version

# --- the man page -------------------------------------------------------------------------------
manpage=$root/usr/share/man/man1/fasttrack.1.gz
if MANWIDTH=80 man --warnings -l "$manpage" >"$work/man.out" 2>"$work/man.err" &&
  [ ! -s "$work/man.err" ] && grep -q 'EXIT STATUS' "$work/man.out"; then
  ok "man --warnings -l renders fasttrack.1.gz without warnings ($(wc -l <"$work/man.out") lines)"
else
  fail "man --warnings -l fasttrack.1.gz:"
  sed 's/^/    /' "$work/man.err"
fi

# --- the config file ----------------------------------------------------------------------------
toml=$root/etc/fasttrack/fasttrack.toml
# Every long option of every command is in the file (flags other than --config, --help, --version).
flags=$({ "$bin" --help; "$bin" watch --help; } | grep -oE '^ +(-[a-zA-Z], )?--[a-z][a-z0-9-]*' |
  sed 's/.*--//' | grep -vxE 'config|help|version' | sort -u)
keys=$(sed -n 's/^#\([a-z][a-z0-9-]*\) = .*/\1/p' "$toml" | sort -u)
absent=$(comm -23 <(printf '%s\n' "$flags") <(printf '%s\n' "$keys") | tr '\n' ' ')
unknown=$(comm -13 <(printf '%s\n' "$flags") <(printf '%s\n' "$keys") | tr '\n' ' ')
if [ -z "$absent" ] && [ -z "$unknown" ]; then
  ok "fasttrack.toml has every option ($(wc -l <<<"$flags")), each commented out"
else
  fail "fasttrack.toml options: missing [ $absent] unknown [ $unknown]"
fi
if grep -qE '^[a-z]' "$toml"; then fail "fasttrack.toml sets something: $(grep -E '^[a-z]' "$toml")"; fi

state=$work/state
mkdir -p "$state"
check "fasttrack status -c <packaged fasttrack.toml> exits 0 (defaults)" \
  "$stage/bin/fasttrack" status -c "$toml" --state-dir "$state" --log "$work/docker.log" \
  --log-file "$work/fasttrack.log"

# Every option uncommented with its example value; the destination is a tmp dir, nothing
# reopens, and the paths fasttrack writes point into the tmp dir too.
mkdir -p "$work/dest" "$work/state2" "$work/logs"
sed -E -e 's|^#([a-z][a-z0-9-]*) = |\1 = |' \
  -e "s|^dest = .*|dest = \"file://$work/dest\"|" \
  -e 's|^reopen = .*|reopen = "none"|' \
  -e "s|^state-dir = .*|state-dir = \"$work/state2\"|" \
  -e "s|^log = .*|log = \"$work/logs/docker.log\"|" \
  -e "s|^log-file = .*|log-file = \"$work/logs/fasttrack.log\"|" \
  "$toml" >"$work/all.toml"
set_keys=$(grep -cE '^[a-z][a-z0-9-]* = ' "$work/all.toml")
if [ "$set_keys" -eq "$(wc -l <<<"$flags")" ]; then
  check "fasttrack status -c <copy with all $set_keys options set> exits 0" \
    "$stage/bin/fasttrack" status -c "$work/all.toml"
else
  fail "the uncommented copy sets $set_keys options, not $(wc -l <<<"$flags")"
fi

summary
