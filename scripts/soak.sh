#!/usr/bin/env bash
# The long reliability soak (see RELIABILITY.md): real syslog-ng, real `fasttrack watch`, real
# s3s-fs behind a fault-injecting proxy, steady traffic plus 5xx bursts (a rotation every few
# seconds), faults injected at random moments, then an exact accounting of every line.
#
#   scripts/soak.sh --minutes 10                      all live faults at once for 10 minutes
#   scripts/soak.sh --minutes 2 --faults kill,reload  only those faults
#   scripts/soak.sh --minutes 2 --faults none         load alone
#   scripts/soak.sh --matrix --minutes 10 --each 2    every row of RELIABILITY.md: load alone and
#                                                     each live fault alone for 2 minutes, the
#                                                     disk-full, hostile stdin and hostile files
#                                                     tests, then all live faults for 10 minutes
#   scripts/soak.sh --minutes 5 --rate 20000 --burst-every 10 --part-size 5MiB
#                                                     logs large enough to be uploaded while
#                                                     they are compressed
# Other options: --rate LINES_PER_SEC (5000), --seed N (replays a run's fault schedule),
# --burst-every SECONDS (3), --part-size SIZE (watch's, default its own),
# --report FILE (the rows, tab-separated; default target/reliability/report.tsv).
# Faults: kill kill-in-cycle reload hup s3-down slowdown reset hand-rotate clock.
# Prints the table in RELIABILITY.md's format; exits non-zero if any run lost or duplicated a line.
# Run as root on Debian (it installs syslog-ng-core and s3s-fs if missing, as scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10 each=2 rate=5000 faults=all seed= matrix=0 report= burst_every=3 part_size=
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --each) each=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --burst-every) burst_every=$2; shift 2 ;;
    --part-size) part_size=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --matrix) matrix=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

source scripts/test-deps.sh
target=${CARGO_TARGET_DIR:-target}
report=${report:-$target/reliability/report.tsv}
mkdir -p "$(dirname "$report")"
: > "$report"
export FASTTRACK_RELIABILITY_REPORT=$(realpath "$report")

echo "== building the release binary and tests"
cargo test --release --test integration --no-run --quiet

failed=0
run() { # $1: test filter, then FASTTRACK_SOAK_* settings
  local filter=$1 rc; shift
  echo "== $filter $*"
  set +e
  env "$@" cargo test --release --quiet --test integration -- --include-ignored --exact \
    "reliability::$filter" --nocapture 2>&1 |
    grep --line-buffered -E '^(soak |RELIABILITY|test result|thread )|panicked|missing'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || failed=1
}
soak() { # $1 minutes, $2 faults
  run soak FASTTRACK_SOAK_MINUTES="$1" FASTTRACK_SOAK_FAULTS="$2" FASTTRACK_SOAK_RATE="$rate" \
    FASTTRACK_SOAK_BURST_EVERY="$burst_every" ${seed:+FASTTRACK_SOAK_SEED=$seed} \
    ${part_size:+FASTTRACK_SOAK_PART_SIZE=$part_size}
}

if [ "$matrix" = 1 ]; then
  soak "$each" none
  for f in kill kill-in-cycle reload hup s3-down slowdown reset hand-rotate clock; do
    soak "$each" "$f"
  done
  run a_full_disk_keeps_everything_says_so_and_resumes_when_space_returns
  run hostile_stdin_is_drained_counted_and_fast_tracked_with_bounded_memory
  run hostile_files_are_refused_with_a_clear_error_and_never_followed
fi
soak "$minutes" "$faults"

echo
echo "| Fault | What was done | Times | Lines sent | Lines found | Duplicated | Partial objects | Result | Reproduce |"
echo "|---|---|---|---:|---:|---:|---:|---|---|"
sort -t$'\t' -k1,1 -s "$report" | awk -F'\t' '{
  printf "| %s | %s | %s | %s | %s | %s | %s | %s | `%s` |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
echo
echo "rows: $report; $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
exit $failed
