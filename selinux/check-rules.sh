# The assertions of selinux/check.sh, sourced by it and run once per policy (Debian's and
# el9's) on the linked binary policy $POL and its file_contexts $FC. Every assertion must hold
# on both: where the two policies differ (type names, what a shared interface grants), the
# assertion states the invariant that matters and names the difference.
#
# Exact assertions use -ds (rules written for fasttrack_t itself); "nothing" assertions are
# indirect, so that rules every domain gets through an attribute count against fasttrack too.

# The syslog-ng runtime type: syslogd_runtime_t on Debian (syslogd_var_run_t is an alias
# there), syslogd_var_run_t on el9. sesearch prints the primary name.
runtime_names() {
    if seinfo -t syslogd_runtime_t "$POL" 2>/dev/null | grep -qw syslogd_runtime_t; then
        RUN=syslogd_runtime_t
    else
        RUN=syslogd_var_run_t
    fi
    # root's home: admin_home_t on el9, user_home_dir_t/user_home_t on Debian.
    ROOT_HOME_T=$(selabel_lookup -b file -k /root/.aws/credentials -f "$FC" 2>/dev/null \
        | sed -n 's/^Default context: [^:]*:[^:]*:\([^:]*\):.*/\1/p')
}

assert_entry() {
    expect_exact "type_transition syslogd_t -> fasttrack_t on fasttrack_exec_t" \
        "type_transition syslogd_t fasttrack_exec_t:process fasttrack_t;" \
        -T -s syslogd_t -t fasttrack_exec_t -c process
    expect_exact "syslogd_t may only transition to and SIGTERM fasttrack_t (process perms exactly)" \
        "allow syslogd_t fasttrack_t:process { signal transition };" \
        -A -s syslogd_t -t fasttrack_t -c process -ds -dt
    # el9's syslogd_t also gets execute_no_trans on fasttrack_exec_t (through an attribute);
    # the transition above still applies to every exec, so what matters is that syslog-ng
    # may run it and never change it.
    expect_perms "syslogd_t may execute fasttrack_exec_t" \
        -A -s syslogd_t -t fasttrack_exec_t -c file -- execute read open getattr
    expect_none "syslogd_t may not write, replace or relabel fasttrack_exec_t" \
        -A -s syslogd_t -t fasttrack_exec_t -c file \
        -p write,append,create,setattr,rename,unlink,link,relabelfrom,relabelto
    expect_match "fasttrack_exec_t is the entrypoint of fasttrack_t" \
        '^allow fasttrack_t fasttrack_exec_t:file \{.* entrypoint .*\};$' \
        -A -s fasttrack_t -t fasttrack_exec_t -c file -p entrypoint
    expect_perms "syslogd_t may run /bin/sh for program() (execute_no_trans on shell_exec_t)" \
        -A -s syslogd_t -t shell_exec_t -c file -- execute execute_no_trans
    if seinfo -x -r system_r "$POL" 2>/dev/null | grep -qw fasttrack_t; then
        ok "role system_r may run fasttrack_t"
    else
        bad "role system_r does not include fasttrack_t"
    fi
    expect_exact "stdin pipe from syslogd_t: fd use" \
        "allow fasttrack_t syslogd_t:fd use;" \
        -A -s fasttrack_t -t syslogd_t -c fd -ds -dt
    expect_exact "stdin pipe from syslogd_t: inherited fifo only (no open)" \
        "allow fasttrack_t syslogd_t:fifo_file { append getattr ioctl lock read write };" \
        -A -s fasttrack_t -t syslogd_t -c fifo_file
    # By hand: fasttrack rotate or upload from an admin shell keeps the admin's domain and
    # terminal (no transition): no terminal rule for fasttrack_t.
    expect_exact "only syslogd_t enters fasttrack_t on exec (a hand run keeps the admin's domain and terminal)" \
        "type_transition syslogd_t fasttrack_exec_t:process fasttrack_t;" \
        -T -t fasttrack_exec_t -c process
    # (el9 lets every domain map any file under domain_can_mmap_files: map is not use.)
    expect_none "fasttrack_t may not open, read or write user pseudo-terminals (user_devpts_t)" \
        -A -s fasttrack_t -t user_devpts_t -c chr_file -p open,read,write,append,ioctl
    expect_none "fasttrack_t may not open, read or write user terminals (user_tty_device_t)" \
        -A -s fasttrack_t -t user_tty_device_t -c chr_file -p open,read,write,append,ioctl
}

assert_reopen() {
    expect_exact "connectto on syslogd_t unix_stream_socket (control socket)" \
        "allow fasttrack_t syslogd_t:unix_stream_socket connectto;" \
        -A -s fasttrack_t -t syslogd_t -c unix_stream_socket -p connectto -ds -dt
    expect_exact "control socket in /var/lib/syslog-ng: sock_file write (connect) only" \
        "allow fasttrack_t syslogd_var_lib_t:sock_file { append getattr open write };" \
        -A -s fasttrack_t -t syslogd_var_lib_t -c sock_file
    expect_exact "control socket under /run/syslog-ng ($RUN): sock_file write (connect) only" \
        "allow fasttrack_t $RUN:sock_file { append getattr open write };" \
        -A -s fasttrack_t -t "$RUN" -c sock_file -ds -dt
    expect_exact "control socket syslog-ng creates directly in /run (devlog_t): connect only" \
        "allow fasttrack_t devlog_t:sock_file { append getattr open write };" \
        -A -s fasttrack_t -t devlog_t -c sock_file -ds -dt
    expect_exact "pidfile under /run ($RUN) readable, nothing else on its files" \
        "allow fasttrack_t $RUN:file { getattr ioctl lock open read };" \
        -A -s fasttrack_t -t "$RUN" -c file -ds -dt
    expect_exact "pidfile /var/lib/syslog-ng/syslog-ng.pid (syslogd_var_lib_t) readable, not writable" \
        "allow fasttrack_t syslogd_var_lib_t:file { getattr ioctl lock open read };" \
        -A -s fasttrack_t -t syslogd_var_lib_t -c file -ds -dt
    expect_exact "signals to syslogd_t: SIGUSR1/SIGHUP (signal), SIGCHLD; no sigkill, no ptrace" \
        "allow fasttrack_t syslogd_t:process { getattr sigchld signal };" \
        -A -s fasttrack_t -t syslogd_t -c process -ds -dt
    expect_perms "/proc/<syslog-ng pid>/fd listed (dir search, read)" \
        -A -s fasttrack_t -t syslogd_t -c dir -- search read open getattr
    expect_exact "/proc/<syslog-ng pid>/{comm,fdinfo/*} readable (and ptrace read-mode check)" \
        "allow fasttrack_t syslogd_t:file { getattr ioctl lock open read };" \
        -A -s fasttrack_t -t syslogd_t -c file -ds -dt
    expect_exact "/proc/<syslog-ng pid>/fd links readable" \
        "allow fasttrack_t syslogd_t:lnk_file { getattr read };" \
        -A -s fasttrack_t -t syslogd_t -c lnk_file -ds -dt
    expect_perms "/proc searched to reach /proc/<pid>" \
        -A -s fasttrack_t -t proc_t -c dir -- search
    expect_perms "inotify watch on var_log_t files (IN_CLOSE_WRITE on the renamed docker.log)" \
        -A -s fasttrack_t -t var_log_t -c file -p watch -- watch
    expect_perms "syslog-ng-ctl reopen: bin_t executed without a transition" \
        -A -s fasttrack_t -t bin_t -c file -- execute execute_no_trans
}

# What fasttrack_t may execute. Debian's corecmd_exec_bin grants bin_t only; el9's grants the
# base_ro_file_type attribute (bin_t, shell_exec_t, etc_t, usr_t...), so /bin/sh is executable
# there without the boolean. The invariant on both: everything fasttrack_t may execute is
# read-only to it (nothing it writes can be run), and the credential_process boolean is what
# Debian needs for /bin/sh.
assert_exec() {
    local rules line tgt nbad=0 n=0 types
    rules=$(q -A -s fasttrack_t -c file -p execute_no_trans) || {
        bad "exec check: sesearch failed: $rules"
        return
    }
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        tgt=$(awk '{print $3}' <<<"$line")
        tgt=${tgt%%:*}
        if w=$(q -A -s fasttrack_t -t "$tgt" -c file -p write,append,create,setattr,rename,relabelto) \
            && [ -n "$w" ]; then
            bad "fasttrack_t may execute what it may write ($tgt): $w"
            nbad=$((nbad + 1))
        fi
    done <<<"$rules"
    types=$(awk '{print $3}' <<<"$rules" | cut -d: -f1 | sort -u | tr '\n' ' ')
    [ "$nbad" -eq 0 ] && ok "every type fasttrack_t may execute is read-only to it ($n rules: $types)"
    expect_match "/bin/sh: the credential_process boolean grants it (Debian needs it; el9 grants shell_exec_t through corecmd_exec_bin)" \
        '^allow fasttrack_t shell_exec_t:file \{.* execute_no_trans .*\}; \[ fasttrack_use_credential_process \]:True$' \
        -A -s fasttrack_t -t shell_exec_t -c file -ds -dt
    expect_bool_off fasttrack_use_credential_process
}

assert_state() {
    expect_perms "/var/log: entries added, removed, renamed (docker.log -> docker.log-N, .gz.part -> .gz)" \
        -A -s fasttrack_t -t var_log_t -c dir -- search add_name remove_name write
    expect_perms "/var/log files: create, rename, link, unlink, setattr (chmod), read, append" \
        -A -s fasttrack_t -t var_log_t -c file -- create rename link unlink setattr read append write open
    expect_perms "state dir: files created, renamed, locked (watch.lock), chmod, removed" \
        -A -s fasttrack_t -t fasttrack_var_lib_t -c file -- create rename lock setattr unlink write read
    expect_perms "state dir: notify/ and uploads/ created, entries added and removed" \
        -A -s fasttrack_t -t fasttrack_var_lib_t -c dir -- create add_name remove_name search write
    expect_perms "config: /etc/fasttrack searched and fasttrack.toml read" \
        -A -s fasttrack_t -t fasttrack_conf_t -c dir -- search read
    expect_perms "config: files in /etc/fasttrack read" \
        -A -s fasttrack_t -t fasttrack_conf_t -c file -- read open getattr
    expect_none "config: /etc/fasttrack not writable" \
        -A -s fasttrack_t -t fasttrack_conf_t -c file,dir -p write,append,create,setattr,rename,unlink,add_name
    # README: AWS files only in /etc/fasttrack; ~/.aws is not read. root's home is
    # admin_home_t on el9 (file_contexts) and user_home_dir_t / user_home_t on Debian (and in
    # the homedir contexts of both, which the lookup below returns). Files: el9 lets every
    # domain follow symlinks there (lnk_file read), which reads no file.
    local home
    for home in admin_home_t "$ROOT_HOME_T" user_home_dir_t; do
        [ -n "$home" ] || continue
        if [ "$(q --type "$home")" != "$home" ]; then
            ok "no home directory read: $home does not exist in this policy"
            continue
        fi
        expect_none "no home directory read (~/.aws): $home" \
            -A -s fasttrack_t -t "$home" -c file -p read,open
    done
    expect_none "nothing written to var_lib_t (the rest of /var/lib)" \
        -A -s fasttrack_t -t var_lib_t -c file,dir -p write,append,create,add_name,rename,setattr,unlink
    expect_none "nothing written to etc_t (/etc)" \
        -A -s fasttrack_t -t etc_t -c file,dir -p write,append,create,add_name,rename,setattr,unlink
    expect_perms "CPU count: /sys/fs/cgroup searched (cgroup_t)" \
        -A -s fasttrack_t -t cgroup_t -c dir -- search
    expect_perms "CPU count: cpu.max / cpu.cfs_quota_us read (cgroup_t)" \
        -A -s fasttrack_t -t cgroup_t -c file -- read open
    expect_none "cgroup files not writable" \
        -A -s fasttrack_t -t cgroup_t -c file,dir -p write,append,create,setattr
    expect_perms "/sys searched on the way to /sys/fs/cgroup (sysfs_t)" \
        -A -s fasttrack_t -t sysfs_t -c dir -- search
}

assert_dest() {
    expect_perms "file:// destination (fasttrack_dest_t): DIR/HOST created, entries added and removed" \
        -A -s fasttrack_t -t fasttrack_dest_t -c dir -- search read add_name remove_name create write
    expect_perms "file:// destination: temp file created, chmod, renamed (or linked and unlinked), read back" \
        -A -s fasttrack_t -t fasttrack_dest_t -c file -- create write setattr rename link unlink read open
    expect_perms "file:// destination: /srv (var_t) searched" \
        -A -s fasttrack_t -t var_t -c dir -- search
    expect_none "file:// destination: var_t itself (unlabelled /srv/DIR) not writable" \
        -A -s fasttrack_t -t var_t -c file,dir -p write,append,create,add_name,rename,setattr,unlink
    expect_match "file:// destination on NFS: only with the boolean fasttrack_dest_nfs" \
        '^allow fasttrack_t nfs_t:file \{.* create .*\}; \[ fasttrack_dest_nfs \]:True$' \
        -A -s fasttrack_t -t nfs_t -c file -p create -ds -dt
    expect_none_uncond "file:// destination on NFS: nothing written without the boolean" \
        -A -s fasttrack_t -t nfs_t -c file,dir -p write,create,add_name
    expect_bool_off fasttrack_dest_nfs
    expect_perms "metrics: temp file written, chmod 0644, renamed over fasttrack.prom" \
        -A -s fasttrack_t -t fasttrack_metrics_t -c file -- create write setattr rename unlink
    expect_exact "metrics: entries added and removed in the directory, which is never created or removed" \
        "allow fasttrack_t fasttrack_metrics_t:dir { add_name getattr ioctl lock open read remove_name search write };" \
        -A -s fasttrack_t -t fasttrack_metrics_t -c dir -ds -dt
}

# TCP: http_port_t (S3, IMDS) and DNS unconditionally; el9's sysnet_dns_name_resolve adds
# dnssec_port_t (DNS over TLS, 853). Every other port type only under its boolean, off.
assert_network() {
    expect_exact "name_connect to http_port_t (S3 HTTPS, EC2 metadata)" \
        "allow fasttrack_t http_port_t:tcp_socket name_connect;" \
        -A -s fasttrack_t -t http_port_t -c tcp_socket -p name_connect -ds -dt
    expect_perms "DNS: name_connect to dns_port_t (TCP fallback)" \
        -A -s fasttrack_t -t dns_port_t -c tcp_socket -- name_connect
    expect_perms "DNS: UDP sockets created and connected" \
        -A -s fasttrack_t -t fasttrack_t -c udp_socket -- create connect write read
    expect_perms "DNS: /etc/resolv.conf and /etc/hosts read (net_conf_t)" \
        -A -s fasttrack_t -t net_conf_t -c file -- read open
    local out extra
    if out=$(q -A -s fasttrack_t -c tcp_socket -p name_connect); then
        extra=$(grep -v '\]:True$' <<<"$out" | awk '{print $3}' | cut -d: -f1 \
            | grep -vxE 'http_port_t|dns_port_t|dnssec_port_t' || true)
        if [ -z "$extra" ]; then
            ok "unconditional TCP connects only to http_port_t and DNS (dns_port_t, dnssec_port_t)"
        else
            bad "unconditional TCP connects to other ports: $(tr '\n' ' ' <<<"$extra")"
        fi
    else
        bad "name_connect query failed: $out"
    fi
    local pair port bool
    for pair in http_cache_port_t:fasttrack_connect_http_cache squid_port_t:fasttrack_connect_squid \
        unreserved_port_t:fasttrack_connect_unreserved; do
        port=${pair%%:*} bool=${pair#*:}
        expect_exact "name_connect to $port only when $bool is on" \
            "allow fasttrack_t $port:tcp_socket name_connect; [ $bool ]:True" \
            -A -s fasttrack_t -t "$port" -c tcp_socket -p name_connect
        expect_bool_off "$bool"
    done
    expect_none "no name_bind (fasttrack listens on nothing)" -A -s fasttrack_t -p name_bind -ds
    expect_perms "certificates readable (cert_t)" \
        -A -s fasttrack_t -t cert_t -c file -- read open getattr
    expect_none "certificates not writable (cert_t)" \
        -A -s fasttrack_t -t cert_t -c file,dir -p write,append,create,add_name,setattr,rename,unlink
    expect_none "no capabilities at all" \
        -A -s fasttrack_t -c capability,capability2,cap_userns,cap2_userns
    expect_match "giving a file the log group (CAP_CHOWN) is denied without an audit message" \
        '^dontaudit fasttrack_t fasttrack_t:capability (chown|\{.* chown .*\});$' \
        --dontaudit -s fasttrack_t -c capability -ds
}

# No write access outside the types fasttrack manages, except these justified TYPE:CLASS
# pairs, each limited to the permissions listed ("*" = any). Names of both policies.
declare -A ALLOWED=(
    # The job itself: docker.log*, fasttrack.log; the state directory; file:// destinations
    # (own type, or NFS under fasttrack_dest_nfs, asserted conditional above).
    [var_log_t:file]='*'
    [var_log_t:dir]='*'
    [var_log_t:lnk_file]='*'
    [fasttrack_var_lib_t:file]='*'
    [fasttrack_var_lib_t:dir]='*'
    [fasttrack_dest_t:file]='*'
    [fasttrack_dest_t:dir]='*'
    [nfs_t:file]='*'
    [nfs_t:dir]='*'
    # --metrics-file: files in node_exporter's textfile directory, which fasttrack never
    # creates or removes itself (asserted exactly above).
    [fasttrack_metrics_t:file]='append create getattr ioctl link lock open read rename setattr unlink watch watch_reads write'
    [fasttrack_metrics_t:dir]='add_name getattr ioctl lock open read remove_name search watch watch_reads write'
    # Its own process: pipes to self (tokio, syslog-ng-ctl stdout/stderr) and its own
    # /proc/self files (every domain may write its own /proc/self/attr, base policy).
    # (el9: under fips_mode every domain may also create and remove fifos of its own type.)
    [fasttrack_t:fifo_file]='append create getattr ioctl link lock open read rename setattr unlink write'
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
    # "write" on a sock_file is connect(2) to it: syslog-ng control socket (in
    # /var/lib/syslog-ng, under /run/syslog-ng, directly in /run as devlog_t); the name
    # services used by sysnet_dns_name_resolve (nscd, systemd-resolved, avahi) and the
    # mcstrans socket that every domain may use (base policy). Debian and el9 names.
    [syslogd_var_lib_t:sock_file]='append getattr open write'
    [syslogd_runtime_t:sock_file]='append getattr open write'
    [syslogd_var_run_t:sock_file]='append getattr open write'
    [devlog_t:sock_file]='append getattr open write'
    [nscd_runtime_t:sock_file]='append getattr open write'
    [nscd_var_run_t:sock_file]='append getattr open write'
    [systemd_resolved_runtime_t:sock_file]='append getattr open write'
    [systemd_resolved_var_run_t:sock_file]='append getattr open write'
    [avahi_runtime_t:sock_file]='append getattr open write'
    [avahi_var_run_t:sock_file]='append getattr open write'
    [setrans_runtime_t:sock_file]='append getattr open write'
    [setrans_var_run_t:sock_file]='append getattr open write'
)
WRITE_PERMS=write,append,create,setattr,rename,unlink,link,add_name,remove_name,reparent,rmdir,relabelfrom,relabelto,mounton,quotaon
FILE_CLASSES=file,dir,lnk_file,chr_file,blk_file,sock_file,fifo_file

assert_writes() {
    local rules line key perms p nwrite=0 nbad=0
    # Rules whose source is fasttrack_t itself (this module, and the interfaces it calls).
    # Rules on attributes every domain has (domain, application_domain_type) are the base
    # policy's, not this module's; they are counted, and the promises above (no home, /etc,
    # /var/lib writes) are asserted indirectly, so they cover those too.
    local nattr
    # (q is not run in a pipeline: bash does not hand the coprocess's descriptors to it.)
    nattr=$(q -A -s fasttrack_t -c "$FILE_CLASSES" -p "$WRITE_PERMS") || nattr=""
    nattr=$(grep -c '^allow [^f]' <<<"$nattr" || true)
    if ! rules=$(q -A -s fasttrack_t -ds -c "$FILE_CLASSES" -p "$WRITE_PERMS"); then
        bad "write check: sesearch failed: $rules"
        return
    fi
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
        ok "no write access except the types fasttrack manages and the justified exceptions ($nwrite rules of fasttrack_t checked; $nattr more are the base policy's rules for every domain)"
    fi
}

# Labels: the linked file_contexts for installed paths, and the type_transition rules that
# decide the label of what other programs create at run time.
assert_labels() {
    expect_label /usr/bin/fasttrack fasttrack_exec_t
    expect_label /etc/fasttrack/fasttrack.toml fasttrack_conf_t
    expect_label /etc/fasttrack/aws-credentials fasttrack_conf_t
    expect_label /var/lib/fasttrack fasttrack_var_lib_t
    expect_label /var/lib/fasttrack/uploads/x.gz fasttrack_var_lib_t
    expect_label /var/lib/fasttrack/index-record.json fasttrack_var_lib_t
    expect_label /var/log/docker.log var_log_t
    expect_label /var/log/docker.log-20260101120000.gz var_log_t
    expect_label /var/log/fasttrack.log var_log_t
    expect_label /var/lib/syslog-ng/syslog-ng.ctl syslogd_var_lib_t
    expect_label /var/lib/syslog-ng/syslog-ng.pid syslogd_var_lib_t
    expect_label /usr/sbin/syslog-ng-ctl bin_t
    expect_label /usr/bin/syslog-ng-ctl bin_t
    expect_label /var/lib/node_exporter/textfile_collector fasttrack_metrics_t
    expect_label /var/lib/node_exporter/textfile_collector/fasttrack.prom fasttrack_metrics_t
    expect_label /srv/incident-logs var_t
    expect_exact "runtime: a socket syslog-ng creates in /run (/run/syslog-ng.ctl) is devlog_t" \
        "type_transition syslogd_t var_run_t:sock_file devlog_t;" \
        -T -s syslogd_t -t var_run_t -c sock_file -ds -dt
    expect_exact "runtime: a file syslog-ng creates in /run (/run/syslog-ng.pid) is $RUN" \
        "type_transition syslogd_t var_run_t:file $RUN;" \
        -T -s syslogd_t -t var_run_t -c file -ds -dt
    expect_none "runtime: files syslog-ng creates in /var/lib/syslog-ng (ctl, pid) keep syslogd_var_lib_t" \
        -T -s syslogd_t -t syslogd_var_lib_t -ds -dt
    local out
    if out=$(q -T -s syslogd_t -t var_log_t -c file -ds -dt) \
        && ! awk 'NF == 4' <<<"$out" | grep -q . \
        && ! grep -Eq ' "?(docker\.log|fasttrack\.log)"?;$' <<<"$out"; then
        ok "runtime: /var/log/docker.log created by syslog-ng stays var_log_t (only named transitions for other files)"
    else
        bad "runtime: syslog-ng may create /var/log/docker.log with another type: $out"
    fi
    local t
    for t in var_log_t fasttrack_var_lib_t fasttrack_dest_t fasttrack_metrics_t; do
        expect_none "runtime: what fasttrack creates in $t (fasttrack.log, docker.log-N.gz, state, objects) keeps $t" \
            -T -s fasttrack_t -t "$t" -c file,dir,lnk_file
    done
}

assert_rules() {
    runtime_names
    assert_entry
    assert_reopen
    assert_exec
    assert_state
    assert_dest
    assert_network
    assert_writes
    assert_labels
}
