#!/usr/bin/env bash
# Builds the fasttrack SELinux module with Debian's selinux-policy-dev, links it into a
# temporary COPY of Debian's "default" policy store (the machine's own store is only read),
# and asserts the key rules on the resulting binary policy with sesearch.
#
#   bash selinux/check.sh            # from any directory; needs root (the store is root-only)
#
# Prints one "ok: ..." or "FAIL: ..." line per check and exits non-zero if any check fails.
# Nothing is written outside a temporary directory, which is removed on exit.
# FASTTRACK_SELINUX_SRC=DIR checks the .te/.fc/.if in DIR instead (used to prove that a
# broken policy fails these checks without touching the repository).
# FASTTRACK_SELINUX_FRESH_STORE=1 builds the temporary store from the packaged modules
# instead of copying the machine's store.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${FASTTRACK_SELINUX_SRC:-$HERE}
STORE=default
started=$SECONDS
pass=0
fail=0

ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
finish() {
    echo "time: $((SECONDS - started))s"
    echo "check.sh: $pass passed, $fail failed"
    if [ "$fail" -eq 0 ]; then exit 0; else exit 1; fi
}

# ---------------------------------------------------------------------------------------
# Tools: Debian packages, installed only if missing.
PKGS=(selinux-policy-dev selinux-policy-default setools semodule-utils policycoreutils
    checkpolicy selinux-utils make m4)
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
    bad "must run as root: the policy store /var/lib/selinux/$STORE is readable by root only"
    finish
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fasttrack-selinux.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------------------------------
# Build the module in the temporary directory (no artefacts in the repository).
mkdir "$WORK/build"
cp "$SRC/fasttrack.te" "$SRC/fasttrack.fc" "$SRC/fasttrack.if" "$WORK/build/"
if make -C "$WORK/build" -f /usr/share/selinux/devel/Makefile fasttrack.pp >"$WORK/build.log" 2>&1 \
    && [ -s "$WORK/build/fasttrack.pp" ]; then
    ok "fasttrack.pp builds with selinux-policy-dev $(dpkg-query -W -f='${Version}' selinux-policy-dev)"
else
    sed 's/^/    /' "$WORK/build.log" | tail -30
    bad "fasttrack.pp does not build"
    finish
fi

# ---------------------------------------------------------------------------------------
# A temporary copy of the store, and the module linked into it (semodule -p: alternate root).
ROOT=$WORK/root
mkdir -p "$ROOT/var/lib/selinux" "$ROOT/etc/selinux"
if [ "${FASTTRACK_SELINUX_FRESH_STORE:-0}" != 1 ] \
    && [ -e "/var/lib/selinux/$STORE/active/modules/100/base" ]; then
    cp -a "/var/lib/selinux/$STORE" "$ROOT/var/lib/selinux/"
    origin="a copy of /var/lib/selinux/$STORE"
else
    # The package is installed but its store was never populated (postinst not run), or
    # FASTTRACK_SELINUX_FRESH_STORE=1: build the same store from the packaged modules, as
    # selinux-policy-default's postinst does (about 40 s more).
    mods=()
    while read -r m; do mods+=("-i/usr/share/selinux/$STORE/$m.pp.bz2"); done \
        <"/usr/share/selinux/$STORE/.modules"
    if ! semodule -p "$ROOT" -s "$STORE" -n -X 100 "${mods[@]}" >"$WORK/seed.log" 2>&1; then
        sed 's/^/    /' "$WORK/seed.log" | tail -30
        bad "cannot build a temporary $STORE store from /usr/share/selinux/$STORE"
        finish
    fi
    origin="a temporary store built from the packaged modules in /usr/share/selinux/$STORE"
fi
if semodule -p "$ROOT" -s "$STORE" -n -X 400 -i "$WORK/build/fasttrack.pp" >"$WORK/link.log" 2>&1; then
    ok "semodule -n -s $STORE -i fasttrack.pp links into $origin"
else
    sed 's/^/    /' "$WORK/link.log" | tail -30
    bad "semodule cannot link fasttrack.pp into $origin"
    finish
fi
POL=$(ls "$ROOT/etc/selinux/$STORE/policy/"policy.* 2>/dev/null | sort -V | tail -n 1)
FC=$ROOT/etc/selinux/$STORE/contexts/files/file_contexts
if [ -z "$POL" ] || [ ! -s "$FC" ]; then
    bad "no binary policy or file_contexts in the temporary store"
    finish
fi

# ---------------------------------------------------------------------------------------
# Assertion helpers. A sesearch that errors (unknown type, class...) is a failure too.

q() { sesearch "$@" "$POL" 2>&1; }

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

# ---------------------------------------------------------------------------------------
# Entering fasttrack_t from syslog-ng.

expect_exact "type_transition syslogd_t -> fasttrack_t on fasttrack_exec_t" \
    "type_transition syslogd_t fasttrack_exec_t:process fasttrack_t;" \
    -T -s syslogd_t -t fasttrack_exec_t -c process
expect_exact "syslogd_t may only transition to and SIGTERM fasttrack_t (process perms exactly)" \
    "allow syslogd_t fasttrack_t:process { signal transition };" \
    -A -s syslogd_t -t fasttrack_t -c process -ds -dt
expect_exact "syslogd_t may execute fasttrack_exec_t (no write)" \
    "allow syslogd_t fasttrack_exec_t:file { execute getattr ioctl map open read };" \
    -A -s syslogd_t -t fasttrack_exec_t -c file
expect_match "fasttrack_exec_t is the entrypoint of fasttrack_t" \
    '^allow fasttrack_t fasttrack_exec_t:file \{.* entrypoint .*\};$' \
    -A -s fasttrack_t -t fasttrack_exec_t -c file -p entrypoint
expect_match "syslogd_t may run /bin/sh for program() (execute_no_trans on shell_exec_t)" \
    '^allow syslogd_t shell_exec_t:file \{.* execute_no_trans .*\};$' \
    -A -s syslogd_t -t shell_exec_t -c file -p execute_no_trans
if seinfo -x -r system_r "$POL" 2>/dev/null | grep -qw fasttrack_t; then
    ok "role system_r may run fasttrack_t"
else
    bad "role system_r does not include fasttrack_t"
fi
expect_exact "stdin pipe from syslogd_t: fd use" \
    "allow fasttrack_t syslogd_t:fd use;" \
    -A -s fasttrack_t -t syslogd_t -c fd
expect_exact "stdin pipe from syslogd_t: inherited fifo only (no open), SIGCHLD to syslog-ng" \
    "allow fasttrack_t syslogd_t:fifo_file { append getattr ioctl lock read write };" \
    -A -s fasttrack_t -t syslogd_t -c fifo_file

# ---------------------------------------------------------------------------------------
# By hand: `fasttrack rotate` or `upload` run from an admin's shell (unconfined_t, sysadm_t)
# has no transition, so it stays in the admin's domain, which owns the terminal its progress
# bar and log lines are drawn on: no terminal rule here. fasttrack_t touches no user terminal.

expect_exact "only syslogd_t enters fasttrack_t on exec (a hand run keeps the admin's domain and terminal)" \
    "type_transition syslogd_t fasttrack_exec_t:process fasttrack_t;" \
    -T -t fasttrack_exec_t -c process
expect_exact "fasttrack_t has no access to user pseudo-terminals (user_devpts_t)" "" \
    -A -s fasttrack_t -t user_devpts_t -c chr_file
expect_exact "fasttrack_t has no access to user terminals (user_tty_device_t)" "" \
    -A -s fasttrack_t -t user_tty_device_t -c chr_file

# ---------------------------------------------------------------------------------------
# Reopen: control socket, signal, /proc of syslog-ng.

expect_exact "connectto on syslogd_t unix_stream_socket (control socket)" \
    "allow fasttrack_t syslogd_t:unix_stream_socket connectto;" \
    -A -s fasttrack_t -t syslogd_t -c unix_stream_socket -p connectto
expect_exact "control socket in /var/lib/syslog-ng: sock_file write (connect) only" \
    "allow fasttrack_t syslogd_var_lib_t:sock_file { append getattr open write };" \
    -A -s fasttrack_t -t syslogd_var_lib_t -c sock_file
expect_exact "control socket under /run: sock_file write (connect) only" \
    "allow fasttrack_t syslogd_runtime_t:sock_file { append getattr open write };" \
    -A -s fasttrack_t -t syslogd_runtime_t -c sock_file
expect_exact "pidfile readable, nothing else on syslogd_runtime_t files" \
    "allow fasttrack_t syslogd_runtime_t:file { getattr ioctl lock open read };" \
    -A -s fasttrack_t -t syslogd_runtime_t -c file
expect_exact "signals to syslogd_t: SIGUSR1/SIGHUP (signal), SIGCHLD; no sigkill, no ptrace" \
    "allow fasttrack_t syslogd_t:process { getattr sigchld signal };" \
    -A -s fasttrack_t -t syslogd_t -c process
expect_exact "/proc/<syslog-ng pid>/{comm,fdinfo/*} readable (and ptrace read-mode check)" \
    "allow fasttrack_t syslogd_t:file { getattr ioctl lock open read };" \
    -A -s fasttrack_t -t syslogd_t -c file
expect_exact "/proc/<syslog-ng pid>/fd links readable" \
    "allow fasttrack_t syslogd_t:lnk_file { getattr read };" \
    -A -s fasttrack_t -t syslogd_t -c lnk_file
expect_match "inotify watch on var_log_t files (IN_CLOSE_WRITE on the renamed docker.log)" \
    '^allow fasttrack_t var_log_t:file \{.* watch .*\};$' \
    -A -s fasttrack_t -t var_log_t -c file -p watch
expect_exact "programs run without a transition: syslog-ng-ctl (bin_t); /bin/sh only with the credential_process boolean" \
    "allow fasttrack_t bin_t:file { execute execute_no_trans getattr ioctl lock map open read };
allow fasttrack_t shell_exec_t:file { execute execute_no_trans getattr ioctl lock map open read }; [ fasttrack_use_credential_process ]:True" \
    -A -s fasttrack_t -p execute_no_trans
if out=$(seinfo -x -b fasttrack_use_credential_process "$POL" 2>&1) \
    && grep -Eq 'fasttrack_use_credential_process *(: *)?(false|off)' <<<"$out"; then
    ok "boolean fasttrack_use_credential_process exists and is off by default"
else
    bad "boolean fasttrack_use_credential_process exists and is off by default"
    printf '    got: %s\n' "${out:-<nothing>}"
fi

# ---------------------------------------------------------------------------------------
# Network: S3 (443) and IMDS (80) are http_port_t; DNS.

expect_exact "name_connect to http_port_t (S3 HTTPS, EC2 metadata)" \
    "allow fasttrack_t http_port_t:tcp_socket name_connect;" \
    -A -s fasttrack_t -t http_port_t -c tcp_socket -p name_connect
expect_exact "name_connect to http_cache_port_t (an egress proxy: squid 3128, 8080)" \
    "allow fasttrack_t http_cache_port_t:tcp_socket name_connect;" \
    -A -s fasttrack_t -t http_cache_port_t -c tcp_socket -p name_connect
expect_exact "TCP connects only to http_port_t, http_cache_port_t and dns_port_t" \
    "$(printf '%s\n' 'allow fasttrack_t dns_port_t:tcp_socket name_connect;' \
        'allow fasttrack_t http_cache_port_t:tcp_socket name_connect;' \
        'allow fasttrack_t http_port_t:tcp_socket name_connect;')" \
    -A -s fasttrack_t -p name_connect
expect_exact "no name_bind (fasttrack listens on nothing)" "" \
    -A -s fasttrack_t -p name_bind
expect_match "certificates readable (cert_t)" \
    '^allow fasttrack_t cert_t:file \{ getattr ioctl lock open read \};$' \
    -A -s fasttrack_t -t cert_t -c file
expect_exact "no capabilities at all" "" \
    -A -s fasttrack_t -c capability,capability2,cap_userns,cap2_userns
expect_exact "giving a file the log group (CAP_CHOWN) is denied without an audit message" \
    "dontaudit fasttrack_t fasttrack_t:capability chown;" \
    --dontaudit -s fasttrack_t -c capability

# ---------------------------------------------------------------------------------------
# The state dir: state.toml, notify/, and an incident's index record (index-record.json),
# each written to a temporary name, chmod, renamed, and the record removed once shipped.

expect_match "state dir: files created, written, chmod, renamed and removed (index-record.json)" \
    '^allow fasttrack_t fasttrack_var_lib_t:file \{( [a-z_]+)* create( [a-z_]+)* rename( [a-z_]+)* setattr( [a-z_]+)* unlink( [a-z_]+)* write( [a-z_]+)* \};$' \
    -A -s fasttrack_t -t fasttrack_var_lib_t -c file

# ---------------------------------------------------------------------------------------
# --metrics-file: node_exporter's textfile directory (no label of its own on RHEL or Debian).

expect_exact "metrics: temp file written, chmod 0644, renamed over fasttrack.prom" \
    "allow fasttrack_t fasttrack_metrics_t:file { append create getattr ioctl link lock open read rename setattr unlink write };" \
    -A -s fasttrack_t -t fasttrack_metrics_t -c file
expect_exact "metrics: entries added and removed in the directory, which is never created or removed" \
    "allow fasttrack_t fasttrack_metrics_t:dir { add_name getattr ioctl lock open read remove_name search write };" \
    -A -s fasttrack_t -t fasttrack_metrics_t -c dir
expect_exact "metrics: nothing written to var_lib_t (the rest of /var/lib)" "" \
    -A -s fasttrack_t -t var_lib_t -c file,dir -p write,create,add_name,rename,setattr

# ---------------------------------------------------------------------------------------
# No write access outside var_log_t and fasttrack_var_lib_t, except these justified
# TYPE:CLASS pairs, each limited to the permissions listed ("*" = any).
declare -A ALLOWED=(
    # The job itself: rename/create/unlink docker.log*, fasttrack.log; state directory.
    [var_log_t:file]='*'
    [var_log_t:dir]='*'
    [fasttrack_var_lib_t:file]='*'
    [fasttrack_var_lib_t:dir]='*'
    # --metrics-file: files in node_exporter's textfile directory, which fasttrack never
    # creates or removes itself (asserted exactly below).
    [fasttrack_metrics_t:file]='append create getattr ioctl link lock open read rename setattr unlink write'
    [fasttrack_metrics_t:dir]='add_name getattr ioctl lock open read remove_name search write'
    # Its own process: pipes to self (tokio, syslog-ng-ctl stdout/stderr) and its own
    # /proc/self files (every domain may write its own /proc/self/attr, base policy).
    [fasttrack_t:fifo_file]='append getattr ioctl lock open read write'
    [fasttrack_t:file]='append getattr ioctl lock open read write'
    # stdout/stderr are /dev/null; /dev/zero and /dev/tty: granted to every domain by the
    # base policy (domain attribute), not by this module.
    [null_device_t:chr_file]='append getattr ioctl lock open read write'
    [zero_device_t:chr_file]='append getattr ioctl lock open read write'
    [devtty_t:chr_file]='append getattr ioctl lock open read write'
    # Inherited pipes (no open): syslog-ng stdin pipe via domtrans_pattern; sshd pipes for
    # every application domain (base ssh module), so an admin can pipe into fasttrack.
    [syslogd_t:fifo_file]='append getattr ioctl lock read write'
    [sshd_t:fifo_file]='append getattr ioctl lock read write'
    # "write" on a sock_file is connect(2) to it: syslog-ng control socket; and the name
    # services used by sysnet_dns_name_resolve (nscd, systemd-resolved, avahi) and the
    # mcstrans socket that every domain may use (base policy).
    [syslogd_var_lib_t:sock_file]='append getattr open write'
    [syslogd_runtime_t:sock_file]='append getattr open write'
    [nscd_runtime_t:sock_file]='append getattr open write'
    [systemd_resolved_runtime_t:sock_file]='append getattr open write'
    [avahi_runtime_t:sock_file]='append getattr open write'
    [setrans_runtime_t:sock_file]='append getattr open write'
)
WRITE_PERMS=write,append,create,setattr,rename,unlink,link,add_name,remove_name,reparent,rmdir,relabelfrom,relabelto,mounton,quotaon
FILE_CLASSES=file,dir,lnk_file,chr_file,blk_file,sock_file,fifo_file
if rules=$(q -A -s fasttrack_t -c "$FILE_CLASSES" -p "$WRITE_PERMS"); then
    nwrite=0
    nbad=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        nwrite=$((nwrite + 1))
        if [[ $line =~ ^allow\ ([^ ]+)\ ([^ :]+):([^ ]+)\ (\{\ ([^}]*)\ \}|([^ ;]+))\; ]]; then
            key="${BASH_REMATCH[2]}:${BASH_REMATCH[3]}"
            perms="${BASH_REMATCH[5]:-${BASH_REMATCH[6]}}"
        else
            bad "write check: cannot parse: $line"
            nbad=$((nbad + 1))
            continue
        fi
        if [ -z "${ALLOWED[$key]+set}" ]; then
            bad "write access outside the allowed types: $line"
            nbad=$((nbad + 1))
            continue
        fi
        [ "${ALLOWED[$key]}" = '*' ] && continue
        for p in $perms; do
            if [[ " ${ALLOWED[$key]} " != *" $p "* ]]; then
                bad "more than the justified permissions on $key ($p): $line"
                nbad=$((nbad + 1))
                break
            fi
        done
    done <<<"$rules"
    if [ "$nwrite" -eq 0 ]; then
        bad "write check: sesearch found no write rule at all (expected var_log_t)"
    elif [ "$nbad" -eq 0 ]; then
        ok "no write access except var_log_t, fasttrack_var_lib_t, fasttrack_metrics_t and the $(( ${#ALLOWED[@]} - 6 )) justified exceptions ($nwrite rules checked)"
    fi
else
    bad "write check: sesearch failed: $rules"
fi

# ---------------------------------------------------------------------------------------
# File contexts of the linked store.
expect_label /usr/bin/fasttrack fasttrack_exec_t
expect_label /etc/fasttrack/fasttrack.toml fasttrack_conf_t
expect_label /etc/fasttrack/aws-credentials fasttrack_conf_t
expect_label /var/lib/fasttrack fasttrack_var_lib_t
expect_label /var/lib/fasttrack/uploads/x.gz fasttrack_var_lib_t
expect_label /var/lib/fasttrack/index-record.json fasttrack_var_lib_t
expect_label /var/log/docker.log var_log_t
expect_label /var/log/docker.log-20260101120000.gz var_log_t
expect_label /var/lib/syslog-ng/syslog-ng.ctl syslogd_var_lib_t
expect_label /var/lib/node_exporter/textfile_collector fasttrack_metrics_t
expect_label /var/lib/node_exporter/textfile_collector/fasttrack.prom fasttrack_metrics_t

finish
