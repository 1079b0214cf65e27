#!/bin/bash
# The article's postrotate, verbatim but for the paths ($1: the log, $2: the s3:// URL, $3: the
# endpoint), run by bash: logrotate runs scripts with /bin/sh, which is dash on Debian, and the
# article's ${VAR/pat/rep} substitutions are bash's (it was written for RHEL, where sh is bash).
# The upload (the article's dcopylogs) is `aws s3 cp`, as the issue asks.
LOG=$1
ROTATEDFILE=`ls -t $LOG* | head -n3 | grep -v '\.log\$' | grep -v '\.gz\$' | head -n1`
TIMESTAMP=`stat -c %Y $ROTATEDFILE`
mv -nv $ROTATEDFILE ${ROTATEDFILE/\.log*/.log-$TIMESTAMP}
/bin/gzip -v9 ${ROTATEDFILE/\.log*/.log-$TIMESTAMP}
aws s3 cp --only-show-errors --endpoint-url "$3" ${ROTATEDFILE/\.log*/.log-$TIMESTAMP}.gz "$2/"
