#!/usr/bin/env bash
# fasttrack's benchmarks against the chain it replaces (benches/baseline/: the article's
# syslog-ng loop, logrotate, gzip -9, aws s3 cp) and the tools people would pick instead
# (gzip, pigz, aws s3 cp, cat | wc -l). Prints one Markdown table (BENCHMARKS.md holds the
# last one). Run as root on a fresh Debian machine: scripts/bench.sh [options of benches/bench.py]
#   scripts/bench.sh --runs 3 --log-mb 200 --big-mb 1024      the defaults
#   scripts/bench.sh --only 2 --runs 5                         one figure
#   scripts/bench.sh --only 12 --report-hosts 1000             fasttrack report over 20 000 records
#   scripts/bench.sh --only 8,9,10,11 --runs 3                 the rows of issue 17 (figure 10: 5 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-deps.sh
missing=()
for tool in logrotate pigz; do command -v $tool >/dev/null 2>&1 || missing+=($tool); done
# Figure 8 reads the .gz back with Java's GZIPInputStream and Go's compress/gzip.
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v aws >/dev/null 2>&1; then
  echo "== installing awscli (pip), the baseline uploader"
  python3 -m pip install --quiet awscli
fi
echo "== building the release binary"
cargo build --release --quiet
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/bench"
python3 benches/bench.py "$@" | tee "$target/bench/results.md"
