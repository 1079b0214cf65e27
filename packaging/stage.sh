#!/usr/bin/env bash
# Builds what every package of fasttrack ships and stages it in one directory; build-rpm.sh and
# build-deb.sh both start here, so the RPM and the .deb carry the very same binary:
#   packaging/stage.sh [STAGE_DIR]      (default: $FASTTRACK_STAGE, else <repo>/target/stage)
#
# 1. installs what the build needs if missing (pip: ziglang + cargo-zigbuild; apt: python3-pip),
# 2. builds the binary against glibc 2.28 (RHEL 8, Debian 10, Ubuntu 18.10 and later) with
#    cargo zigbuild,
# 3. generates the man page and the completions (`fasttrack generate-docs`, src/docs.rs) and
#    copies the files the packages install:
#
#   STAGE/bin/fasttrack                                   the binary
#   STAGE/gen/fasttrack.1                                 the man page
#   STAGE/gen/fasttrack.bash, _fasttrack, fasttrack.fish  bash, zsh and fish completions
#   STAGE/src/fasttrack.toml, fasttrack.conf, README.md, CHANGELOG.md, status-json.md,
#   incident-index.md, fasttrack.rules.yml
#   STAGE/src/selinux/fasttrack.te, .fc, .if              (the RPM's fasttrack-selinux)
#   STAGE/version                                         the version in Cargo.toml
#   STAGE/source-date-epoch                               the last commit's time (dates, mtimes)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
stage=${1:-${FASTTRACK_STAGE:-$repo/target/stage}}

target=x86_64-unknown-linux-gnu
glibc=2.28
# Versions known to build for glibc 2.28 here; override if needed.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.14.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.20.1}

log() { printf '== %s\n' "$*" >&2; }

# --- prerequisites ----------------------------------------------------------------------------
if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    log "installing python3-pip (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
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
[ -n "$version" ] || { echo "stage.sh: no version in $repo/Cargo.toml" >&2; exit 1; }
# Reproducible dates (man page, package changelogs): the last commit's, if this is a git checkout.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

log "cargo zigbuild --release --target $target.$glibc (fasttrack $version)"
# zig's clang builds for a baseline CPU with the `evex512` feature off, so libdeflate's
# AVX-512 functions (target attributes, chosen at run time by CPUID) do not compile without
# it; -mevex512 turns on no AVX-512 instruction by itself: the baseline code is unchanged.
export CFLAGS_x86_64_unknown_linux_gnu="${CFLAGS_x86_64_unknown_linux_gnu:-} -mevex512"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
(cd "$repo" && cargo zigbuild --release --target "$target.$glibc" --target-dir "$target_dir" \
  --bin fasttrack)
bindir=$target_dir/$target/release
[ -x "$bindir/fasttrack" ] || { echo "stage.sh: $bindir/fasttrack was not built" >&2; exit 1; }

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
  [ -f "$repo/selinux/$f" ] || { echo "stage.sh: missing selinux/$f" >&2; exit 1; }
  cp -p "$repo/selinux/$f" "$stage/src/selinux/"
done
printf '%s\n' "$version" >"$stage/version"
printf '%s\n' "$SOURCE_DATE_EPOCH" >"$stage/source-date-epoch"
