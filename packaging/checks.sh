# shellcheck shell=bash
# The verdict helpers of packaging/check.sh, check-deb.sh and root-test.sh (sourced):
# `ok`/`fail` print one line each and count the failures, `check` runs a command as one check,
# `summary` ends the script with the count (exit 1 if any failed).
failures=0
ok() { printf 'ok: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}
# check DESCRIPTION COMMAND...: ok if COMMAND succeeds, else FAIL with its output.
check() {
  local what=$1 output
  shift
  if output=$("$@" 2>&1); then
    ok "$what"
  else
    fail "$what"
    [ -n "$output" ] && printf '%s\n' "$output" | sed 's/^/    /'
  fi
}
summary() {
  echo
  if [ "$failures" -eq 0 ]; then
    echo "all checks passed"
  else
    echo "$failures check(s) failed"
    exit 1
  fi
}
