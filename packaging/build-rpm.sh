#!/usr/bin/env bash
# Builds the fasttrack and fasttrack-selinux RPMs on a Debian host (x86_64):
#   packaging/build-rpm.sh [OUT_DIR]      (default: <repo>/target/rpm; runnable from any cwd)
#
# 1. installs what it needs if missing (apt: rpm rpmlint binutils man-db groff-base bzip2
#    selinux-policy-dev),
# 2. runs packaging/stage.sh: the glibc-2.28 binary (cargo zigbuild), the man page and the
#    completions, staged in $FASTTRACK_STAGE (default <repo>/target/stage; the layout is
#    described there and in the spec), the same build build-deb.sh packages,
# 3. runs rpmbuild -bb in a temporary _topdir and copies the RPMs to OUT_DIR.
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
stage=${FASTTRACK_STAGE:-$repo/target/stage}

log() { printf '== %s\n' "$*" >&2; }

# --- prerequisites ----------------------------------------------------------------------------
# (binutils, man-db and groff-base are for check.sh: objdump -T, man -l.)
need_apt=()
command -v rpmbuild >/dev/null || need_apt+=(rpm)
command -v rpmlint >/dev/null || need_apt+=(rpmlint)
command -v objdump >/dev/null || need_apt+=(binutils)
command -v man >/dev/null || need_apt+=(man-db)
command -v groff >/dev/null || need_apt+=(groff-base)
command -v bzip2 >/dev/null || need_apt+=(bzip2)
[ -f /usr/share/selinux/devel/Makefile ] || need_apt+=(selinux-policy-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- build and stage --------------------------------------------------------------------------
bash "$here/stage.sh" "$stage"
version=$(cat "$stage/version")
# The last commit's time, as for the man page: rpmbuild reads it too.
SOURCE_DATE_EPOCH=$(cat "$stage/source-date-epoch")
export SOURCE_DATE_EPOCH

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
