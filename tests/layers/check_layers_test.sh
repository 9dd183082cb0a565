#!/usr/bin/env bash
# check_layers.sh itself: it passes on this checkout, and fails on a copy of
# src/ with one crossing planted per layer boundary the docs promise, and on
# a folder that has no rule.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
check=$here/check_layers.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bash "$check" "$root" >/dev/null || { echo "check_layers.sh fails on the checkout itself" >&2; exit 1; }

failures=0
# expect_refused FILE INCLUDE: a copy of src/ where FILE includes INCLUDE must fail, naming both.
expect_refused() {
  local file=$1 include=$2 out
  rm -rf "$work/src" && cp -r "$root/src" "$work/src"
  printf '#include %s\n' "$include" >>"$work/$file"
  if out=$(bash "$check" "$work" 2>&1); then
    echo "not refused: $file including $include" >&2
    failures=$((failures + 1))
  elif [[ $out != *"$file includes"* ]]; then
    echo "refused without naming $file: $out" >&2
    failures=$((failures + 1))
  fi
}

expect_refused src/domain/room_state.hpp '<boost/asio/io_context.hpp>'
expect_refused src/protocol/messages.hpp '"service/metrics.hpp"'
expect_refused src/ports/event_store.hpp '"service/room/room.hpp"'
expect_refused src/ports/presence_store.hpp '<hiredis/hiredis.h>'
expect_refused src/service/metrics.hpp '"adapters/nats/appender.hpp"'
expect_refused src/service/room/room.hpp '"server/ws_session.hpp"'
expect_refused src/service/room/room.hpp '<nats/nats.h>'
expect_refused src/service/room/room.hpp '"service/history/admin_api.hpp"'
expect_refused src/adapters/nats/appender.hpp '"service/room/room.hpp"'
expect_refused src/adapters/nats/appender.hpp '"adapters/redis/connection.hpp"'
expect_refused src/adapters/redis/presence_cache.hpp '<nats/nats.h>'
expect_refused src/server/ws_session.hpp '"adapters/nats/event_log.hpp"'
expect_refused src/app/instance.hpp '"cli/options.hpp"'

# A folder without a rule.
rm -rf "$work/src" && cp -r "$root/src" "$work/src"
mkdir -p "$work/src/newlayer" && echo '#pragma once' >"$work/src/newlayer/thing.hpp"
if bash "$check" "$work" >/dev/null 2>&1; then
  echo "not refused: a folder (src/newlayer) without a rule" >&2
  failures=$((failures + 1))
fi

((failures == 0)) && echo "check_layers.sh: refuses every planted crossing and the folder without a rule"
exit $((failures > 0))
