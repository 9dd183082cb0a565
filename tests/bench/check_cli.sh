#!/usr/bin/env bash
# Checks of the split between the product and the load tool, by running the
# built executables:
#   check_cli.sh bench-help BENCH_BIN    sigstream-bench --help (and of its
#       history and join commands) exits 0, names the phases and their
#       SIGSTREAM_* variables; rates that are not whole numbers are refused
#   check_cli.sh product-has-no-bench SIGSTREAM_BIN   `sigstream bench` exits
#       2 with "unknown command", and `sigstream --help` lists no bench;
#       `sigstream serve --help` is grouped and keeps the test flags for
#       --help-all
set -uo pipefail
mode=${1:?usage: check_cli.sh bench-help|product-has-no-bench BINARY}
bin=${2:?usage: check_cli.sh bench-help|product-has-no-bench BINARY}
[[ -x $bin ]] || { echo "no such executable: $bin" >&2; exit 2; }

failures=0
check() { # DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok    $what"; else echo "FAIL  $what"; failures=$((failures + 1)); fi
}
contains() { grep -qF -- "$2" <<<"$1"; }

case $mode in
  bench-help)
    out=$("$bin" --help); code=$?
    check "sigstream-bench --help exits 0" test "$code" -eq 0
    check "its usage names sigstream-bench" contains "$out" "Usage: sigstream-bench [options]"
    check "it lists the phases (memory, join, signal, isolation)" contains "$out" "memory, join, signal, isolation"
    check "options keep their SIGSTREAM_* variables (--rates)" contains "$out" "[SIGSTREAM_RATES]"
    for command in history join; do
      out=$("$bin" "$command" --help); code=$?
      check "sigstream-bench $command --help exits 0" test "$code" -eq 0
      check "its usage names sigstream-bench $command" contains "$out" "Usage: sigstream-bench $command [options]"
    done
    "$bin" --no-such-option >/dev/null 2>&1; code=$?
    check "an unknown option exits 2" test "$code" -eq 2
    for rates in 5e3 200x 0 ""; do
      "$bin" --rates "$rates" >/dev/null 2>&1; code=$?
      check "--rates '$rates' (not whole rates in 1..200000) exits 2" test "$code" -eq 2
    done
    ;;
  product-has-no-bench)
    err=$("$bin" bench 2>&1 >/dev/null); code=$?
    check "sigstream bench exits 2" test "$code" -eq 2
    check "sigstream bench says unknown command" contains "$err" "unknown command 'bench'"
    out=$("$bin" --help); code=$?
    check "sigstream --help exits 0" test "$code" -eq 0
    check "sigstream --help lists no bench command" bash -c '! grep -Eq "^  bench " <<<"$1"' _ "$out"
    for command in serve history state rooms cluster token; do
      check "sigstream --help lists $command" bash -c 'grep -Eq "^  $2 " <<<"$1"' _ "$out" "$command"
    done
    # serve --help in groups, the test-only flags only in --help-all.
    out=$("$bin" serve --help); code=$?
    check "sigstream serve --help exits 0" test "$code" -eq 0
    for group in "Network:" "NATS (the event log):" "Redis (the presence cache):" "Security:" "Limits:" "Tuning:"; do
      check "serve --help has the group '$group'" bash -c 'grep -qx -- "$2" <<<"$1"' _ "$out" "$group"
    done
    check "serve --help lists no --fault-* flag" bash -c '! grep -q -- "--fault-" <<<"$1"' _ "$out"
    check "serve --help points to --help-all" contains "$out" "--help-all"
    out=$("$bin" serve --help-all); code=$?
    check "sigstream serve --help-all exits 0" test "$code" -eq 0
    check "serve --help-all lists --fault-drop-live-every" contains "$out" "--fault-drop-live-every"
    check "the flags still work" bash -c '"$1" serve --fault-drop-live-every x 2>&1 | grep -q "not a valid"' _ "$bin"
    ;;
  *) echo "unknown mode: $mode" >&2; exit 2 ;;
esac
if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
