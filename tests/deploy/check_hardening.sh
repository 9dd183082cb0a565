#!/usr/bin/env bash
# Checks that a built binary carries the release hardening CMakeLists.txt
# asks for: PIE, full RELRO (GNU_RELRO + BIND_NOW), a stack protector and
# _FORTIFY_SOURCE (checked libc calls), and a non-executable stack.
# Usage: check_hardening.sh BINARY
set -euo pipefail
bin=${1:?usage: check_hardening.sh BINARY}
[[ -f $bin ]] || { echo "no such binary: $bin" >&2; exit 2; }
command -v readelf >/dev/null || { echo "readelf (binutils) is missing" >&2; exit 2; }

failures=0
check() { # DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok    $what"; else echo "FAIL  $what"; failures=$((failures + 1)); fi
}
header=$(readelf -h "$bin")
dynamic=$(readelf -d "$bin")
segments=$(readelf -lW "$bin")
symbols=$(readelf --dyn-syms -W "$bin")

check "PIE (ELF type DYN, DF_1_PIE)" \
  bash -c 'grep -q "Type:[[:space:]]*DYN" <<<"$1" && grep -Eq "FLAGS_1.*PIE" <<<"$2"' _ "$header" "$dynamic"
check "RELRO segment (GNU_RELRO)" grep -q GNU_RELRO <<<"$segments"
check "full RELRO: symbols bound at start-up (BIND_NOW)" \
  bash -c 'grep -Eq "\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW" <<<"$1"' _ "$dynamic"
check "stack protector (__stack_chk_fail)" grep -q '__stack_chk_fail' <<<"$symbols"
check "_FORTIFY_SOURCE (checked libc calls, __*_chk)" grep -Eq ' __[a-z0-9_]+_chk(@|$)' <<<"$symbols"
check "non-executable stack (GNU_STACK RW)" \
  bash -c 'grep -E "GNU_STACK" <<<"$1" | grep -qv "RWE"' _ "$segments"

if ((failures > 0)); then
  echo "$failures hardening check(s) failed for $bin" >&2
  exit 1
fi
echo "all hardening checks passed for $bin"
