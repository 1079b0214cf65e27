#!/usr/bin/env bash
# Builds the fasttrack and fasttrack-selinux RPMs on a Debian host (x86_64):
#   packaging/build-rpm.sh [OUT_DIR]      (default: <repo>/target/rpm; runnable from any cwd)
#
# 1. installs what it needs if missing (apt: rpm rpmlint binutils man-db groff-base bzip2
#    selinux-policy-dev; pip: ziglang + cargo-zigbuild),
# 2. builds the binary against glibc 2.28 (RHEL 8) with cargo zigbuild,
# 3. generates the man page and the completions (`fasttrack generate-docs`), and stages everything in
#    $FASTTRACK_STAGE (default <repo>/target/rpm-stage; the layout is described in the spec),
# 4. runs rpmbuild -bb in a temporary _topdir and copies the RPMs to OUT_DIR.
#
# The SELinux module is compiled by the spec with /usr/share/selinux/devel/Makefile: here that
# is Debian's selinux-policy-dev (reference policy headers); on RHEL, rpmbuild uses the target's
# own selinux-policy-devel. Debian's rpm has no %selinux_* macros: packaging/selinux-macros.rpm
# stands in for them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/target/rpm}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=${FASTTRACK_STAGE:-$repo/target/rpm-stage}

target=x86_64-unknown-linux-gnu
glibc=2.28
# Versions known to build for glibc 2.28 here; override if needed.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.14.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.20.1}

log() { printf '== %s\n' "$*" >&2; }

# --- prerequisites ----------------------------------------------------------------------------
need_apt=()
command -v rpmbuild >/dev/null || need_apt+=(rpm)
command -v rpmlint >/dev/null || need_apt+=(rpmlint)
command -v objdump >/dev/null || need_apt+=(binutils)
command -v man >/dev/null || need_apt+=(man-db)
command -v groff >/dev/null || need_apt+=(groff-base)
command -v bzip2 >/dev/null || need_apt+=(bzip2)
[ -f /usr/share/selinux/devel/Makefile ] || need_apt+=(selinux-policy-dev)
need_zig=false
if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
  need_zig=true
  python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if $need_zig; then
  log "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION (pip)"
  pip_flags=(--quiet --disable-pip-version-check)
  # Debian's own python3 refuses system-wide installs (PEP 668) unless told otherwise.
  if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" "ziglang==$ZIGLANG_VERSION" \
    "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  hash -r
  # pyenv puts new console scripts behind a shim only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi

# --- build ------------------------------------------------------------------------------------
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "build-rpm.sh: no version in $repo/Cargo.toml" >&2; exit 1; }
# Reproducible dates (man page): the last commit's, if this is a git checkout.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

log "cargo zigbuild --release --target $target.$glibc (fasttrack $version)"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
(cd "$repo" && cargo zigbuild --release --target "$target.$glibc" --target-dir "$target_dir" \
  --bin fasttrack)
bindir=$target_dir/$target/release
[ -x "$bindir/fasttrack" ] || { echo "build-rpm.sh: $bindir/fasttrack was not built" >&2; exit 1; }

# --- stage ------------------------------------------------------------------------------------
log "staging in $stage"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/gen" "$stage/src/selinux"
cp -p "$bindir/fasttrack" "$stage/bin/"
"$bindir/fasttrack" generate-docs "$stage/gen" >/dev/null
cp -p "$here/fasttrack.toml" "$repo/syslog-ng/fasttrack.conf" "$repo/README.md" \
  "$repo/CHANGELOG.md" "$repo/docs/status-json.md" "$repo/docs/incident-index.md" \
  "$here/fasttrack.rules.yml" "$stage/src/"
for f in fasttrack.te fasttrack.fc fasttrack.if; do
  [ -f "$repo/selinux/$f" ] || { echo "build-rpm.sh: missing selinux/$f" >&2; exit 1; }
  cp -p "$repo/selinux/$f" "$stage/src/selinux/"
done

# --- rpmbuild ---------------------------------------------------------------------------------
topdir=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-rpm.XXXXXX")
trap 'rm -rf "$topdir"' EXIT
rpmbuild_args=(
  -bb
  # Debian's rpm database is empty: the BuildRequires (selinux-policy-devel, bzip2) are met by
  # the Debian packages installed above, which rpm cannot see.
  --nodeps
  --define "_topdir $topdir"
  --define "fasttrack_stage $stage"
  --define "fasttrack_version $version"
  # xz payload: readable by every rpm since RHEL 5 (Debian's rpm 4.18 defaults to zstd).
  --define "_binary_payload w6.xzdio"
  # Docs in /usr/share/doc/fasttrack as on RHEL (Debian's rpm defaults to NAME-VERSION).
  --define "_docdir_fmt %%{NAME}"
)
# Debian's brp-compress uses bash's `read -d` but runs under /bin/sh = dash, so it compresses
# no man page: run it with bash first, in a step that is empty on Debian (the dash run after
# it is then a no-op).
if [ "$(basename "$(readlink -f /bin/sh)")" != bash ] &&
  [ -z "$(rpm --eval '%{?__arch_install_post}' | tr -d '[:space:]')" ]; then
  rpmbuild_args+=(--define "__arch_install_post bash %{_rpmconfigdir}/brp-compress %{_prefix}")
fi
if [ -z "$(rpm --eval '%{?selinux_modules_install:yes}')" ]; then
  rpmbuild_args+=(--load "$here/selinux-macros.rpm")
fi
log "rpmbuild -bb packaging/fasttrack.spec"
rpmbuild "${rpmbuild_args[@]}" "$here/fasttrack.spec" >"$topdir/rpmbuild.log" 2>&1 || {
  cat "$topdir/rpmbuild.log" >&2
  exit 1
}

rm -f "$out"/fasttrack-*.rpm
find "$topdir/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
log "RPMs in $out:"
ls -1 "$out"/fasttrack-*.rpm
