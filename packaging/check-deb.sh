#!/usr/bin/env bash
# shellcheck disable=SC2016 # the bash -c '...' snippets expand their own "$1".
# Builds the .deb (packaging/build-deb.sh) and checks it without installing it (that is
# packaging/root-test.sh's job): fields, file list, modes, conffiles, maintainer scripts, the
# libraries the binary needs against Depends, the binary against the RPM's, lintian. Prints
# "ok: ..." or "FAIL: ..." per check and exits 1 if any failed. Runnable from any cwd:
#   packaging/check-deb.sh [OUT_DIR]      (default: <repo>/target/deb)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/target/deb}
stage=${FASTTRACK_STAGE:-$repo/target/stage}
export FASTTRACK_STAGE=$stage

# shellcheck source=packaging/checks.sh
source "$here/checks.sh"

# dpkg-shlibdeps is in dpkg-dev; lintian in lintian.
need_apt=()
command -v dpkg-shlibdeps >/dev/null || need_apt+=(dpkg-dev)
command -v lintian >/dev/null || need_apt+=(lintian)
command -v objcopy >/dev/null || need_apt+=(binutils)
command -v man >/dev/null || need_apt+=(man-db)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

bash "$here/build-deb.sh" "$out" || {
  fail "build-deb.sh"
  exit 1
}
out=$(cd "$out" && pwd)
deb=$(find "$out" -maxdepth 1 -name 'fasttrack_*_amd64.deb' | head -n1)
[ -n "$deb" ] || {
  fail "build-deb.sh made fasttrack_*_amd64.deb in $out"
  exit 1
}
ok "built $(basename "$deb")"

work=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-check-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb --raw-extract "$deb" "$work/pkg"
pkg=$work/pkg

# --- control ------------------------------------------------------------------------------------
field() { dpkg-deb --field "$deb" "$1"; }
check "Version is Cargo.toml's version, Debian revision 1 ($(field Version))" \
  test "$(field Version)" = "$(cat "$stage/version")-1"
check "Architecture amd64, Section admin, Priority optional" \
  test "$(field Architecture) $(field Section) $(field Priority)" = "amd64 admin optional"
check "Depends: libc6 (>= 2.28), syslog-ng-core (>= 3.13.1); Recommends: ca-certificates" \
  test "$(field Depends); $(field Recommends)" = "libc6 (>= 2.28), syslog-ng-core (>= 3.13.1); ca-certificates"

# Every library the binary needs comes from a package named in Depends, at a version Depends
# allows: dpkg-shlibdeps reads the binary's NEEDED entries and the symbols it uses, as
# debhelper's ${shlibs:Depends} would. It answers libc6 (>= 2.34) because Debian's libc6
# symbols file forces sysconf@GLIBC_2.2.5 to 2.34 (libc6's changelog: "to correctly support the
# new definition of MINSIGSTKSZ and SIGSTKSZ", which glibc 2.34's headers turn into
# sysconf(_SC_SIGSTKSZ) calls an older glibc rejects). That cannot apply to this binary: its C
# parts are compiled against glibc 2.28's headers (zig), no crate in the build asks for
# _SC_SIGSTKSZ or _SC_MINSIGSTKSZ, and Rust's std sizes its signal stack with getauxval. So the
# check is: the only package is libc6, and every symbol that needs more than 2.28 is sysconf.
shlibdeps() {
  mkdir -p "$work/shlib/debian" &&
    printf 'Source: fasttrack\n\nPackage: fasttrack\nArchitecture: amd64\n' >"$work/shlib/debian/control" &&
    (cd "$work/shlib" && dpkg-shlibdeps -v -v -O "$pkg/usr/bin/fasttrack")
}
# Its debug lines go to stdout (buffered) and its warnings to stderr: read apart, or a warning
# lands inside a debug line and that symbol's version is lost.
if shlibs_debug=$(shlibdeps 2>"$work/shlibdeps.err"); then
  shlibs=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs_debug")
  # Every symbol found in a symbols file, with its version; a line that does not parse is an
  # error of this check, not a symbol to skip.
  versions=$(awk '/Looking up symbol/ { sym = $NF }
    /Found in symbols file of/ { v = $0; sub(/.*minver: /, "", v); sub(/,.*/, "", v); print sym, v }' \
    <<<"$shlibs_debug")
  unparsed=$(awk '$2 !~ /^[0-9][0-9.:~+-]*$/' <<<"$versions")
  newer=$(while read -r sym ver; do
      dpkg --compare-versions "$ver" gt 2.28 && echo "$sym ($ver)"
    done <<<"$versions" | sort -u | tr '\n' ' ')
  check "dpkg-shlibdeps ($shlibs) names only libc6, and only sysconf (Debian's forced 2.34) above 2.28" \
    bash -c '[[ "$1" =~ ^libc6\ \(\>=\ [0-9.]+\)$ ]] && [ "$2" = "sysconf@GLIBC_2.2.5 (2.34) " ] &&
      [ -z "$3" ] && [ -n "$4" ] ||
      { echo "shlibs: $1"; echo "symbols above 2.28: $2"; echo "versions not read: $3"; exit 1; }' \
    _ "$shlibs" "$newer" "$unparsed" "$versions"
else
  fail "dpkg-shlibdeps usr/bin/fasttrack"
  sed 's/^/    /' "$work/shlibdeps.err"
fi

# --- files --------------------------------------------------------------------------------------
dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }' | sed 's| \./| /|; s|/$||' >"$work/contents"
has() { # MODE OWNER PATH...: each PATH is in the package with that mode string and owner
  local mode=$1 owner=$2 missing=()
  shift 2
  for path in "$@"; do grep -qxF -- "$mode $owner $path" "$work/contents" || missing+=("$path"); done
  [ ${#missing[@]} -eq 0 ] || {
    printf 'missing or not %s %s: %s\n' "$mode" "$owner" "${missing[@]}"
    echo "listed:"
    cat "$work/contents"
    return 1
  }
}
check "the binary is 0755 root:root" has -rwxr-xr-x root/root /usr/bin/fasttrack
check "fasttrack.toml is 0640 root:root (it may hold a webhook's token)" \
  has -rw-r----- root/root /etc/fasttrack/fasttrack.toml
check "the snippet, man page, completions, alert rules and docs are 0644 root:root" \
  has -rw-r--r-- root/root \
  /etc/syslog-ng/conf.d/fasttrack.conf \
  /usr/share/man/man1/fasttrack.1.gz \
  /usr/share/bash-completion/completions/fasttrack \
  /usr/share/zsh/vendor-completions/_fasttrack \
  /usr/share/fish/vendor_completions.d/fasttrack.fish \
  /usr/share/fasttrack/fasttrack.rules.yml \
  /usr/share/doc/fasttrack/copyright \
  /usr/share/doc/fasttrack/changelog.gz \
  /usr/share/doc/fasttrack/changelog.Debian.gz \
  /usr/share/doc/fasttrack/README.md.gz \
  /usr/share/doc/fasttrack/status-json.md.gz \
  /usr/share/doc/fasttrack/incident-index.md.gz \
  /usr/share/lintian/overrides/fasttrack
check "every directory is 0755 root:root" \
  bash -c '! grep "^d" "$1" | grep -v "^drwxr-xr-x root/root "' _ "$work/contents"
check "/var/lib/fasttrack is not shipped (the postinst creates it, so an admin's owner and mode survive upgrades)" \
  bash -c '! grep -q " /var/" "$1"' _ "$work/contents"
check "conffiles are fasttrack.toml and the syslog-ng snippet" \
  test "$(sort "$pkg/DEBIAN/conffiles" | tr '\n' ' ')" = "/etc/fasttrack/fasttrack.toml /etc/syslog-ng/conf.d/fasttrack.conf "
check "md5sums match the files" bash -c 'cd "$1" && md5sum --quiet -c DEBIAN/md5sums' _ "$pkg"
check "the packaged fasttrack.toml is packaging/fasttrack.toml" \
  cmp "$pkg/etc/fasttrack/fasttrack.toml" "$here/fasttrack.toml"
check "the packaged syslog-ng snippet is syslog-ng/fasttrack.conf" \
  cmp "$pkg/etc/syslog-ng/conf.d/fasttrack.conf" "$repo/syslog-ng/fasttrack.conf"
check "the packaged alert rules are packaging/fasttrack.rules.yml" \
  cmp "$pkg/usr/share/fasttrack/fasttrack.rules.yml" "$here/fasttrack.rules.yml"

# --- the binary: the RPM's build ----------------------------------------------------------------
objcopy --remove-section=.comment "$stage/bin/fasttrack" "$work/staged-fasttrack"
check "the binary is the staged build (stage.sh), less its .comment section" \
  cmp "$pkg/usr/bin/fasttrack" "$work/staged-fasttrack"
rpm=$(find "$repo/target/rpm" -maxdepth 1 -name 'fasttrack-[0-9]*.x86_64.rpm' 2>/dev/null | head -n1)
if [ -n "$rpm" ] && [ "$rpm" -nt "$stage/bin/fasttrack" ] && command -v rpm2cpio >/dev/null; then
  check "the binary is byte for byte the RPM's ($(basename "$rpm"))" \
    bash -c 'cd "$1" && rpm2cpio "$2" | cpio -idm --quiet ./usr/bin/fasttrack && cmp usr/bin/fasttrack "$3"' \
    _ "$work" "$rpm" "$pkg/usr/bin/fasttrack"
fi
check "the packaged binary runs (fasttrack --version)" "$pkg/usr/bin/fasttrack" --version
if MANWIDTH=80 man --warnings -l "$pkg/usr/share/man/man1/fasttrack.1.gz" >"$work/man.out" 2>"$work/man.err" &&
  [ ! -s "$work/man.err" ] && grep -q 'EXIT STATUS' "$work/man.out"; then
  ok "man --warnings -l renders fasttrack.1.gz without warnings"
else
  fail "man --warnings -l fasttrack.1.gz:"
  sed 's/^/    /' "$work/man.err"
fi

# --- maintainer scripts -------------------------------------------------------------------------
check "postinst and postrm are 0755 POSIX sh (dash -n), and there is no preinst or prerm" \
  bash -c 'cd "$1/DEBIAN" && [ -x postinst ] && [ -x postrm ] && [ ! -e preinst ] && [ ! -e prerm ] &&
    dash -n postinst && dash -n postrm' _ "$pkg"
check "postinst creates /var/lib/fasttrack 0750 and reloads only a running syslog-ng" \
  bash -c 'grep -q "mkdir -m 0750 \"\$statedir\"" "$1" &&
    grep -q "invoke-rc.d --quiet syslog-ng status >/dev/null 2>&1 || return 0" "$1"' _ "$pkg/DEBIAN/postinst"
check "postrm purge removes /var/lib/fasttrack and fasttrack.log, never docker.log*" \
  bash -c 'sed -n "/^purge)/,/;;/p" "$1" | grep -q "rm -rf /var/lib/fasttrack" &&
    ! grep -E "^[^#]*rm .*docker" "$1"' _ "$pkg/DEBIAN/postrm"

# --- lintian ------------------------------------------------------------------------------------
# --pedantic --display-info: every tag, down to the informational ones, is either fixed or
# overridden with its reason in packaging/deb/lintian-overrides (installed in the package).
lintian --pedantic --display-info --show-overrides "$deb" >"$work/lintian.out" 2>&1
lintian_rc=$?
tags=$(grep -E '^[EWIPX]: ' "$work/lintian.out")
overridden=$(grep -cE '^O: ' "$work/lintian.out")
if [ "$lintian_rc" -eq 0 ] && [ -z "$tags" ]; then
  ok "lintian --pedantic --display-info: no tag left ($overridden overridden, each with its reason)"
else
  fail "lintian --pedantic --display-info (exit $lintian_rc):"
  sed 's/^/    /' "$work/lintian.out"
fi
grep -E '^O: ' "$work/lintian.out" | sed 's/^/    lintian: /'

summary
