#!/bin/sh
# The article's loop made to work on current kernels, and nothing else changed: a `while read`
# loop drains stdin and touches a stamp file for every line; the article's one-liner watches
# the stamp's mtime where it watched the pipe's. Parameters as in loop.sh, plus FT_STAMP.
q=${FT_QUIET:-30}
stamp=${FT_STAMP:?FT_STAMP: the stamp file}
touch "$stamp"
# dash gives a background job /dev/null as stdin before any redirection: pass the pipe as fd 3.
exec 3<&0
(while read -r _; do touch "$stamp"; done) <&3 &
tt=`stat -c %Y "$stamp"`;while :;do [ $((`date +%s` - `stat -c %Y "$stamp"`)) -le $q ] && nn="";[ -z $nn ] && [ $tt != `stat -c %Y "$stamp"` ] && [ $((`date +%s` - `stat -c %Y "$stamp"`)) -ge $q ] && nn="1" && ${FT_LOGROTATE:-/sbin/logrotate -vf /etc/logrotate.d/docker};sleep 1;done >>${FT_HOOKLOG:-/var/log/logrotatehook-500error-sh.log} 2>&1
