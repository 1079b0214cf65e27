#!/usr/bin/env bash
# The full fault-injection sweep (issue 18; see RELIABILITY.md): on the paths of `rotate`,
# `upload` and a `watch` cycle, to file:// and to S3 (s3s-fs), with a real syslog-ng, every
# system call of the matrix in tests/faults.rs fails once with each error it can return in
# real life, for every N (strace -e inject=SYSCALL:error=ERR:when=N). After each run: no
# panic, no hang, an error naming the file or step, and the next clean run ships every line
# exactly once with nothing pending.
#
#   scripts/faults.sh                   every N of every pair (long: an hour or more on 2 cores)
#   scripts/faults.sh --runs 200        a sample: 200 runs per rotate/upload path, 60 per watch path
#   scripts/faults.sh --seed S          replays a sample (the seed is printed)
#   scripts/faults.sh --report FILE     where the table goes (default target/faults/table.md)
#
# Prints RELIABILITY.md's table; exits non-zero if any run panicked, hung, named nothing, or
# lost a line. Run as root on Debian (it installs strace, syslog-ng-core and s3s-fs if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=all seed= report=
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "faults.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

source scripts/test-deps.sh
target=${CARGO_TARGET_DIR:-target}
report=${report:-$target/faults/table.md}
mkdir -p "$(dirname "$report")"
watch_runs=all
[ "$runs" = all ] || watch_runs=$(( (runs + 2) / 3 ))

echo "== building the tests"
cargo test --test integration --no-run --quiet

echo "== sweep: runs per path $runs (watch $watch_runs)"
set +e
FASTTRACK_FAULT_RUNS=$runs FASTTRACK_FAULT_WATCH_RUNS=$watch_runs FASTTRACK_FAULT_BUDGET_SECS=none \
  FASTTRACK_FAULT_REPORT=$(realpath -m "$report") FASTTRACK_FAULT_VERBOSE=1 ${seed:+FASTTRACK_FAULT_SEED=$seed} \
  cargo test --quiet --test integration -- --exact \
  faults::every_system_call_failing_once_panics_nothing_hangs_nothing_and_loses_no_line --nocapture 2>&1 |
  grep --line-buffered -E '^(faults: .*(seed|PROBLEM))|problem\(s\)|test result|panicked at'
rc=${PIPESTATUS[0]}
set -e
echo
cat "$report" 2>/dev/null || echo "(no table: the sweep did not finish)"
echo
echo "table: $report; $(uname -r), $(nproc) cores, $(strace -V | head -1), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
exit "$rc"
