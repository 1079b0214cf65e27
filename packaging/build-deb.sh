#!/usr/bin/env bash
# Builds the fasttrack .deb for Debian 10+ and Ubuntu 20.04+ (amd64, glibc 2.28+):
#   packaging/build-deb.sh [OUT_DIR]      (default: <repo>/target/deb; runnable from any cwd)
#
# 1. runs packaging/stage.sh: the glibc-2.28 binary, the man page and the completions, the very
#    build that build-rpm.sh packages (STAGE = $FASTTRACK_STAGE, default <repo>/target/stage),
# 2. lays out the package tree from STAGE and packaging/deb/ (control, conffiles, postinst,
#    postrm, copyright, lintian overrides) with the RPM's paths and modes (packaging/fasttrack.spec)
#    in Debian's places: zsh completions in vendor-completions, docs gzipped with the upstream
#    changelog as changelog.gz and a generated changelog.Debian.gz,
# 3. runs dpkg-deb --build --root-owner-group (no fakeroot, no debhelper) into OUT_DIR.
#
# Every file's mtime is SOURCE_DATE_EPOCH (the last commit's), so a rebuild of the same commit
# gives the same package.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/target/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=${FASTTRACK_STAGE:-$repo/target/stage}

log() { printf '== %s\n' "$*" >&2; }

command -v dpkg-deb >/dev/null || { echo "build-deb.sh: needs dpkg-deb (Debian or Ubuntu)" >&2; exit 1; }
if ! command -v objcopy >/dev/null; then
  log "installing binutils (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends binutils >/dev/null
fi

bash "$here/stage.sh" "$stage"
upstream=$(cat "$stage/version")
# Debian revision 1, like the RPM's Release: 1.
version=$upstream-1
SOURCE_DATE_EPOCH=$(cat "$stage/source-date-epoch")
export SOURCE_DATE_EPOCH

tree=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-deb.XXXXXX")
chmod 0755 "$tree"
trap 'rm -rf "$tree"' EXIT
# Modes are set explicitly below; nothing else may depend on the caller's umask.
umask 022
doc=$tree/usr/share/doc/fasttrack

log "laying out fasttrack $version"
install -D -m 0755 "$stage/bin/fasttrack" "$tree/usr/bin/fasttrack"
# The build has no symbol table (no .symtab) already; its .comment (compiler versions) goes, as
# dh_strip does on Debian and brp-strip-comment-note does for the RPM.
objcopy --remove-section=.comment "$tree/usr/bin/fasttrack"
# 0640: the file may hold a webhook URL with its token (README, "Security").
install -D -m 0640 "$stage/src/fasttrack.toml" "$tree/etc/fasttrack/fasttrack.toml"
install -D -m 0644 "$stage/src/fasttrack.conf" "$tree/etc/syslog-ng/conf.d/fasttrack.conf"
install -d -m 0755 "$tree/usr/share/man/man1"
gzip -9n <"$stage/gen/fasttrack.1" >"$tree/usr/share/man/man1/fasttrack.1.gz"
install -D -m 0644 "$stage/gen/fasttrack.bash" "$tree/usr/share/bash-completion/completions/fasttrack"
install -D -m 0644 "$stage/gen/_fasttrack" "$tree/usr/share/zsh/vendor-completions/_fasttrack"
install -D -m 0644 "$stage/gen/fasttrack.fish" "$tree/usr/share/fish/vendor_completions.d/fasttrack.fish"
install -D -m 0644 "$stage/src/fasttrack.rules.yml" "$tree/usr/share/fasttrack/fasttrack.rules.yml"
install -D -m 0644 "$here/deb/lintian-overrides" "$tree/usr/share/lintian/overrides/fasttrack"

install -d -m 0755 "$doc"
gzip -9n <"$stage/src/README.md" >"$doc/README.md.gz"
gzip -9n <"$stage/src/status-json.md" >"$doc/status-json.md.gz"
gzip -9n <"$stage/src/incident-index.md" >"$doc/incident-index.md.gz"
# The upstream changelog of a non-native package is changelog.gz (Debian policy 12.7).
gzip -9n <"$stage/src/CHANGELOG.md" >"$doc/changelog.gz"
{
  printf 'fasttrack (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Package of fasttrack %s; its changes are in changelog.gz.\n\n' "$upstream"
  printf ' -- fasttrack maintainers <fasttrack@example.com>  %s\n' \
    "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"
# copyright: fasttrack's licence, then the crates linked into the binary, listed from Cargo.lock.
{
  cat "$here/deb/copyright"
  printf '\nFiles: usr/bin/fasttrack\n'
  printf 'Copyright: the authors of each crate below\n'
  printf 'License: various\n'
  printf ' The binary statically links these Rust crates (crates.io), under these licences:\n'
  (cd "$repo" && cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu) |
    python3 -c '
import json, sys
meta = json.load(sys.stdin)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(p["id"] for p in meta["packages"] if p["name"] == "fasttrack" and p["source"] is None)
# Normal dependencies only (no dev or build ones), and no proc-macros: they run in the compiler.
seen, todo = set(), [root]
while todo:
    for dep in nodes[todo.pop()]["deps"]:
        if not any(k["kind"] is None for k in dep["dep_kinds"]) or dep["pkg"] in seen:
            continue
        if any("proc-macro" in t["kind"] for t in pkgs[dep["pkg"]]["targets"]):
            continue
        seen.add(dep["pkg"])
        todo.append(dep["pkg"])
for name, version, lic in sorted((pkgs[i]["name"], pkgs[i]["version"], pkgs[i]["license"] or "see the crate") for i in seen):
    print(f"  {name} {version}: {lic}")
'
} >"$doc/copyright"
chmod 0644 "$doc"/*

# --- control files ----------------------------------------------------------------------------
install -d -m 0755 "$tree/DEBIAN"
install -m 0755 "$here/deb/postinst" "$here/deb/postrm" "$tree/DEBIAN/"
install -m 0644 "$here/deb/conffiles" "$tree/DEBIAN/conffiles"
(cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$tree/DEBIAN/md5sums"
chmod 0644 "$tree/DEBIAN/md5sums"
# Installed-Size in KiB, counted as dpkg-gencontrol does: each file rounded up, 1 per directory.
installed_size=$(find "$tree" -path "$tree/DEBIAN" -prune -o -mindepth 1 -printf '%y %s\n' |
  awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
# Depends: glibc 2.28, the one the binary is built against (it needs libc, libm, libpthread,
# libdl and ld.so, all in libc6: check-deb.sh asks dpkg-shlibdeps, and says why its answer,
# 2.34, comes from a Debian rule that does not apply to this binary), and syslog-ng, whose
# program() destination fasttrack is (packaging/README.md says why it is not a Recommends).
depends="libc6 (>= 2.28), syslog-ng-core (>= 3.13.1)"
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  -e "s/@DEPENDS@/$depends/" "$here/deb/control.in" >"$tree/DEBIAN/control"
chmod 0644 "$tree/DEBIAN/control"

find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$out/fasttrack_${version}_amd64.deb
rm -f "$out"/fasttrack_*.deb
log "dpkg-deb --build --root-owner-group"
dpkg-deb --root-owner-group -Zxz --build "$tree" "$deb" >/dev/null
log "package in $out:"
ls -1 "$deb"
