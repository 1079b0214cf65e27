#!/bin/sh
# The article's program() script, as written: it stats its stdin (the pipe from syslog-ng)
# every second and runs logrotate once the pipe's mtime is 30 s old. Only the paths are
# parameters (FT_LOGROTATE, FT_HOOKLOG) and the 30 s (FT_QUIET), so that the benchmark can run
# it in a temp dir. On current kernels a pipe's mtime does not change when data is written
# (docs/syslog-ng.md), so this never fires: the benchmark measures that as a result.
q=${FT_QUIET:-30}
tt=`stat -c %Y -`;while :;do [ $((`date +%s` - `stat -c %Y -`)) -le $q ] && nn="";[ -z $nn ] && [ $tt != `stat -c %Y -` ] && [ $((`date +%s` - `stat -c %Y -`)) -ge $q ] && nn="1" && ${FT_LOGROTATE:-/sbin/logrotate -vf /etc/logrotate.d/docker};sleep 1;done >>${FT_HOOKLOG:-/var/log/logrotatehook-500error-sh.log} 2>&1
