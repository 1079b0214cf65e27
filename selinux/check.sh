#!/usr/bin/env bash
# Builds the fasttrack SELinux module against two policies and asserts the same rules on both:
#   debian: Debian's selinux-policy-dev, linked into a temporary COPY of Debian's "default"
#           store (the machine's own store is only read);
#   el9:    the CentOS Stream 9 targeted policy built from the sources vendored in
#           selinux/el9 (pinned commit, see selinux/el9/SOURCE.md), the way RHEL 9 builds it,
#           with the module compiled in the same tree (what selinux-policy-devel does).
# Every assertion runs with sesearch / seinfo / selabel_lookup on each linked binary policy.
#
#   bash selinux/check.sh            # from any directory; needs root (the store is root-only)
#
# Prints one "ok: [POLICY] ..." or "FAIL: [POLICY] ..." line per check and exits non-zero if
# any check fails. Nothing is written outside a temporary directory, which is removed on exit
# (the el9 policy is rebuilt each run, about 60 s: nothing is cached).
# FASTTRACK_SELINUX_SRC=DIR checks the .te/.fc/.if in DIR instead (used to prove that a
# broken policy fails these checks without touching the repository).
# FASTTRACK_SELINUX_FRESH_STORE=1 builds the temporary Debian store from the packaged modules
# instead of copying the machine's store.
# FASTTRACK_SELINUX_POLICIES="debian el9" (the default) names the policies to check.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${FASTTRACK_SELINUX_SRC:-$HERE}
POLICIES=${FASTTRACK_SELINUX_POLICIES:-debian el9}
started=$SECONDS
pass=0
fail=0
TAG=""

ok() { echo "ok: ${TAG:+[$TAG] }$*"; pass=$((pass + 1)); }
bad() { echo "FAIL: ${TAG:+[$TAG] }$*"; fail=$((fail + 1)); }
finish() {
    echo "time: $((SECONDS - started))s"
    echo "check.sh: $pass passed, $fail failed (policies: $POLICIES)"
    if [ "$fail" -eq 0 ]; then exit 0; else exit 1; fi
}

# ---------------------------------------------------------------------------------------
# Tools: Debian packages, installed only if missing.
PKGS=(selinux-policy-dev selinux-policy-default setools semodule-utils policycoreutils
    checkpolicy selinux-utils make m4 python3 xz-utils)
missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        bad "packages missing (${missing[*]}) and not root to install them"
        finish
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null; }
    apt_install || { apt-get update -qq && apt_install; }
fi
if [ "$(id -u)" -ne 0 ]; then
    bad "must run as root: the policy store /var/lib/selinux/default is readable by root only"
    finish
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-selinux.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------------------------------
# Debian: build with selinux-policy-dev, link into a copy of the store.
# Sets POL and FC.
build_debian() {
    local store=default build=$WORK/debian/build root=$WORK/debian/root origin
    mkdir -p "$build"
    cp "$SRC/fasttrack.te" "$SRC/fasttrack.fc" "$SRC/fasttrack.if" "$build/"
    if make -C "$build" -f /usr/share/selinux/devel/Makefile fasttrack.pp >"$WORK/debian/build.log" 2>&1 \
        && [ -s "$build/fasttrack.pp" ]; then
        ok "fasttrack.pp builds with selinux-policy-dev $(dpkg-query -W -f='${Version}' selinux-policy-dev)"
    else
        sed 's/^/    /' "$WORK/debian/build.log" | tail -30
        bad "fasttrack.pp does not build"
        return 1
    fi
    mkdir -p "$root/var/lib/selinux" "$root/etc/selinux"
    if [ "${FASTTRACK_SELINUX_FRESH_STORE:-0}" != 1 ] \
        && [ -e "/var/lib/selinux/$store/active/modules/100/base" ]; then
        cp -a "/var/lib/selinux/$store" "$root/var/lib/selinux/"
        origin="a copy of /var/lib/selinux/$store"
    else
        # The package is installed but its store was never populated (postinst not run), or
        # FASTTRACK_SELINUX_FRESH_STORE=1: build the same store from the packaged modules, as
        # selinux-policy-default's postinst does (about 40 s more).
        local mods=() m
        while read -r m; do mods+=("-i/usr/share/selinux/$store/$m.pp.bz2"); done \
            <"/usr/share/selinux/$store/.modules"
        if ! semodule -p "$root" -s "$store" -n -X 100 "${mods[@]}" >"$WORK/debian/seed.log" 2>&1; then
            sed 's/^/    /' "$WORK/debian/seed.log" | tail -30
            bad "cannot build a temporary $store store from /usr/share/selinux/$store"
            return 1
        fi
        origin="a temporary store built from the packaged modules in /usr/share/selinux/$store"
    fi
    if semodule -p "$root" -s "$store" -n -X 400 -i "$build/fasttrack.pp" >"$WORK/debian/link.log" 2>&1; then
        ok "semodule -n -s $store -i fasttrack.pp links into $origin"
    else
        sed 's/^/    /' "$WORK/debian/link.log" | tail -30
        bad "semodule cannot link fasttrack.pp into $origin"
        return 1
    fi
    POL=$(ls "$root/etc/selinux/$store/policy/"policy.* 2>/dev/null | sort -V | tail -n 1)
    FC=$root/etc/selinux/$store/contexts/files/file_contexts
}

# el9: the vendored CentOS Stream 9 sources, built and linked by selinux/el9/build.sh.
build_el9() {
    local root=$WORK/el9/root t0=$SECONDS
    mkdir -p "$WORK/el9"
    if bash "$HERE/el9/build.sh" "$WORK/el9" "$root" "$SRC" >"$WORK/el9/build.log" 2>&1; then
        ok "the el9 targeted policy (c9s $(sed -n 's/^POLICY_REV=\([0-9a-f]\{12\}\).*/\1/p' \
            "$HERE/el9/vendor.sh")) builds with fasttrack.pp linked in ($((SECONDS - t0))s)"
    else
        sed 's/^/    /' "$WORK/el9/build.log" | tail -30
        bad "the el9 policy with fasttrack.pp does not build or link (selinux/el9/build.sh)"
        return 1
    fi
    POL=$(ls "$root/etc/selinux/targeted/policy/"policy.* 2>/dev/null | sort -V | tail -n 1)
    FC=$root/etc/selinux/targeted/contexts/files/file_contexts
}

# ---------------------------------------------------------------------------------------
# Assertion helpers. A sesearch that errors (unknown type, class...) is a failure too.

# q SESEARCH-ARGS...: sesearch on $POL, answered by one sesearch-batch.py process per policy
# (started by start_queries) that loaded the policy once.
start_queries() {
    [ -z "${QPID:-}" ] || stop_queries
    coproc QUERY { /usr/bin/python3 "$HERE/sesearch-batch.py" "$POL" fasttrack_t syslogd_t 2>&1; }
    QPID=$QUERY_PID
}
stop_queries() {
    local fd=${QUERY[1]:-}
    [ -z "$fd" ] || eval "exec $fd>&-"
    wait "$QPID" 2>/dev/null || true
    QPID=""
}
q() {
    local line out="" rc=1
    printf '%q ' "$@" >&"${QUERY[1]}"
    printf '\n' >&"${QUERY[1]}"
    while IFS= read -r line <&"${QUERY[0]}"; do
        if [[ $line == $'\x1e '* ]]; then
            rc=${line#$'\x1e '}
            break
        fi
        out+="${out:+$'\n'}$line"
    done
    [ -z "$out" ] || printf '%s\n' "$out"
    return "$rc"
}

# expect_exact DESC EXPECTED SESEARCH-ARGS...: the whole output must be EXPECTED.
expect_exact() {
    local desc=$1 want=$2 out
    shift 2
    if out=$(q "$@") && [ "$out" = "$want" ]; then
        ok "$desc"
    else
        bad "$desc"
        printf '    expected: %s\n' "$want"
        printf '    got:      %s\n' "${out:-<nothing>}"
    fi
}

# expect_match DESC ERE SESEARCH-ARGS...: some output line must match ERE.
expect_match() {
    local desc=$1 re=$2 out
    shift 2
    if out=$(q "$@") && grep -Eq -- "$re" <<<"$out"; then
        ok "$desc"
    else
        bad "$desc"
        printf '    wanted a line matching: %s\n' "$re"
        printf '    got: %s\n' "${out:-<nothing>}"
    fi
}

# expect_perms DESC SESEARCH-ARGS... -- PERM...: the unconditional rules found grant every PERM.
expect_perms() {
    local desc=$1 out p missing=() args=()
    shift
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    if ! out=$(q "${args[@]}"); then
        bad "$desc (sesearch: $out)"
        return
    fi
    out=$(grep -v ']:True$\|]:False$' <<<"$out" || true)
    for p in "$@"; do
        grep -Eq -- "(\{| )$p( |;|\})" <<<"$out" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        ok "$desc"
    else
        bad "$desc: missing ${missing[*]}"
        printf '    got: %s\n' "${out:-<nothing>}"
    fi
}

# expect_none DESC SESEARCH-ARGS...: no rule at all (indirect: rules on attributes count).
expect_none() {
    local desc=$1 out
    shift
    if out=$(q "$@") && [ -z "$out" ]; then
        ok "$desc"
    else
        bad "$desc"
        printf '    got: %s\n' "${out:-<sesearch failed>}"
    fi
}

# expect_none_uncond DESC SESEARCH-ARGS...: no unconditional rule (boolean-guarded ones may exist).
expect_none_uncond() {
    local desc=$1 out
    shift
    if out=$(q "$@") && ! grep -v '\]:\(True\|False\)$' <<<"$out" | grep -q .; then
        ok "$desc"
    else
        bad "$desc"
        printf '    got: %s\n' "${out:-<sesearch failed>}"
    fi
}

# expect_bool_off NAME: the boolean exists and defaults to off.
expect_bool_off() {
    local out
    if out=$(q --bool "$1") && [ "$out" = "$1: false" ]; then
        ok "boolean $1 exists and is off by default"
    else
        bad "boolean $1 exists and is off by default"
        printf '    got: %s\n' "${out:-<nothing>}"
    fi
}

# expect_label PATH TYPE: the file_contexts of the linked store give PATH the type TYPE.
expect_label() {
    local path=$1 want=$2 got
    got=$(selabel_lookup -b file -k "$path" -f "$FC" 2>&1 | sed -n 's/^Default context: //p')
    if [ "${got}" = "system_u:object_r:$want:s0" ]; then
        ok "file context: $path is $want"
    else
        bad "file context: $path should be $want, is ${got:-<none>}"
    fi
}

source "$HERE/check-rules.sh"

for policy in $POLICIES; do
    TAG=$policy
    POL="" FC=""
    case $policy in
        debian) build_debian || continue ;;
        el9) build_el9 || continue ;;
        *) bad "unknown policy $policy (debian, el9)"; continue ;;
    esac
    if [ -z "$POL" ] || [ ! -s "$FC" ]; then
        bad "no binary policy or file_contexts in the temporary store"
        continue
    fi
    t0=$SECONDS
    start_queries
    assert_rules
    stop_queries
    echo "[$policy] assertions took $((SECONDS - t0))s"
done
TAG=""
finish
