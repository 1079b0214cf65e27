#!/usr/bin/env bash
# Builds the CentOS Stream 9 targeted policy from the sources vendored here, with the
# fasttrack module added, the way selinux-policy.spec builds selinux-policy-targeted
# (modular: base.pp, one .pp per module of the el9 module list, linked by semodule into a
# store), and writes the store under ROOT:
#
#   bash selinux/el9/build.sh WORKDIR ROOT FASTTRACK_SRC_DIR
#
# Result: ROOT/etc/selinux/targeted/policy/policy.NN and .../contexts/files/file_contexts.
# fasttrack.pp is compiled in the same tree, against the same interfaces, which is what
# selinux-policy-devel's Makefile does with the headers it installs from this tree.
# Needs checkpolicy, semodule, semodule_package, m4, make, python3, xz. About 90 s on 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$1 root=$2 src=$3
(cd "$HERE" && sha256sum --quiet -c SHA256SUMS) || {
    echo "el9 sources in $HERE do not match SHA256SUMS (re-run vendor.sh)" >&2
    exit 1
}
tree=$work/selinux-policy
mkdir -p "$tree"
xz -dc "$HERE/selinux-policy-src.tar.xz" | tar -x -C "$tree"
cp "$HERE/container.if" "$tree/policy/modules/contrib/"
cp "$src/fasttrack.te" "$src/fasttrack.if" "$src/fasttrack.fc" "$tree/policy/modules/contrib/"
cp "$HERE/users-targeted" "$tree/policy/users"
cp "$HERE/booleans-targeted.conf" "$tree/policy/booleans.conf"
# modules.conf as the spec makes it: base list, then contrib list. A listed module whose
# sources the tree does not have (glusterd, which moved to its own package) is dropped,
# and every module of the tree that is not listed is "off", as the Makefile treats it.
cat "$HERE/modules-targeted-base.conf" "$HERE/modules-targeted-contrib.conf" \
    | awk -v dir="$tree/policy/modules" '
        /^[a-z0-9_]+[ \t]*=/ {
            name = $1
            if (system("ls " dir "/*/" name ".te " dir "/*/" name ".te.in 2>/dev/null | grep -q .") != 0) next
        }
        { print }' >"$tree/policy/modules.conf"
echo "fasttrack = module" >>"$tree/policy/modules.conf"
# polxml= : modules.conf and booleans.conf are given, not generated from the module XML
# (the spec runs "make conf" first only to overwrite its output with these files).
params=(DISTRO=redhat UBAC=n DIRECT_INITRC=n MONOLITHIC=n MLS_CATS=1024 MCS_CATS=1024
    UNK_PERMS=allow NAME=targeted TYPE=mcs polxml=)
jobs=$(nproc 2>/dev/null || echo 1)
# "conf" with polxml= only generates corenetwork.te/.if/.fc from their .in files.
make -C "$tree" "${params[@]}" conf >"$work/el9-conf.log" 2>&1 \
    || { tail -30 "$work/el9-conf.log" >&2; exit 1; }
make -C "$tree" "${params[@]}" base.pp >"$work/el9-base.log" 2>&1 \
    || { tail -30 "$work/el9-base.log" >&2; exit 1; }
make -C "$tree" -j"$jobs" "${params[@]}" modules >"$work/el9-modules.log" 2>&1 \
    || { grep -B2 -A8 -m3 ERROR "$work/el9-modules.log" >&2 || tail -30 "$work/el9-modules.log" >&2; exit 1; }
mkdir -p "$root/var/lib/selinux" "$root/etc/selinux"
mods=()
for pp in "$tree"/*.pp; do mods+=("-i$pp"); done
semodule -p "$root" -s targeted -n -X 100 "${mods[@]}" >"$work/el9-link.log" 2>&1 \
    || { tail -30 "$work/el9-link.log" >&2; exit 1; }
