#!/usr/bin/env bash
# Regenerates selinux/el9/ from git mirrors of the three public repositories it comes from
# (see SOURCE.md). Run by hand when moving to a newer el9 policy; check.sh never runs it
# (CI reaches no repository).
#
#   bash selinux/el9/vendor.sh POLICY_GIT_DIR CONTAINER_GIT_DIR DISTGIT_GIT_DIR
#
# POLICY_GIT_DIR    a clone of https://github.com/fedora-selinux/selinux-policy (branch c9s)
# CONTAINER_GIT_DIR a clone of https://github.com/containers/container-selinux
# DISTGIT_GIT_DIR   a clone of the el9 dist-git of selinux-policy (module lists, users,
#                   boolean defaults), e.g. https://github.com/openela-main/selinux-policy
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POLICY_REV=73a2d29ae8592bc323f8bf79165ad0d19c9aadcf     # c9s, 2024-10-23
CONTAINER_REV=v2.233.0                                  # 2024-09-11, before POLICY_REV
DISTGIT_REV=ae8dd050a34a7b52d68fafb610c576ad62e9039c    # selinux-policy-38.1.23-1.el9_3.2
pol=$1 con=$2 dist=$3

# The policy sources a modular build needs (what selinux-policy.spec builds from), without
# documentation, man pages and changelogs. modules.conf comes from dist-git instead.
git --git-dir="$pol" archive --format=tar "$POLICY_REV" Makefile Rules.modular build.conf \
    support config policy VERSION ':!policy/modules.conf' | xz -9 >"$HERE/selinux-policy-src.tar.xz"
git --git-dir="$pol" show "$POLICY_REV:COPYING" >"$HERE/COPYING"
# container.te is not part of selinux-policy-targeted (container-selinux ships it), but
# base modules call its interfaces: the spec unpacks it into policy/modules/contrib.
git --git-dir="$con" show "$CONTAINER_REV:container.if" >"$HERE/container.if"
git --git-dir="$con" show "$CONTAINER_REV:LICENSE" >"$HERE/LICENSE.container-selinux"
for f in modules-targeted-base.conf modules-targeted-contrib.conf users-targeted \
    booleans-targeted.conf; do
    git --git-dir="$dist" show "$DISTGIT_REV:SOURCES/$f" >"$HERE/$f"
done
(cd "$HERE" && sha256sum selinux-policy-src.tar.xz container.if modules-targeted-base.conf \
    modules-targeted-contrib.conf users-targeted booleans-targeted.conf >SHA256SUMS)
