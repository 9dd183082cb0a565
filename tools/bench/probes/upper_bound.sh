#!/usr/bin/env bash
# What the 1,000/s step could reach with the two levers left on nats-server
# 2.9.10, each taken away in an experiment (docs/benchmarks.md, fourteenth
# session): the store's regrowth stalls (a stream made with 32 KB blocks,
# then raised to 1 GiB by raise_stream_max_bytes.py) and the live copies to
# instances without the target (--room-spread together: one instance follows
# each room). Four conditions, alternated, each on a fresh `scripts/dev`
# cluster, sigstream only, 20 s per step, with --trace for trace_summary.py.
#
#   default-spread         the benchmark as it is
#   default-together       one live copy per signal
#   small-blocks-spread    no regrowth
#   small-blocks-together  neither
#
# Usage (from the repository root, `scripts/dev up` built; a quiet machine):
#   tools/bench/probes/upper_bound.sh [--rooms 100] [--rounds 2] [--overload] OUTDIR
# --overload adds 5,000/s and the benchmark's overload step (18,750/s for 30 s,
# then 1,000/s for 10 s). Every step is bounded; the cluster is stopped at the end.
set -euo pipefail
rooms=100 rounds=2 overload=0
while [[ $# -gt 1 ]]; do
  case "$1" in
    --rooms) rooms="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --overload) overload=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -eq 1 ]] || { sed -n '2,21p' "$0" >&2; exit 2; }
out="$1"
mkdir -p "$out"
here="$(cd "$(dirname "$0")" && pwd)"

export SIGSTREAM_LOG_LEVEL=warn SIGSTREAM_SIGNAL_RATE=1000000 SIGSTREAM_SIGNAL_BURST=1000000 SIGSTREAM_JOIN_RATE=0
# 1,000 rooms are 4,000 joins one after the other: longer than the default join timeout.
export SIGSTREAM_JOIN_TIMEOUT=300s
steps=(--rates 1000)
[[ $overload -eq 1 ]] && steps=(--rates 1000,5000 --overload --overload-rate 18750 --overload-duration 30s)

for round in $(seq 1 "$rounds"); do
  for condition in default-spread small-blocks-together default-together small-blocks-spread; do
    name="$rooms-rooms-$condition-$round"
    if [[ $condition == small-blocks-* ]]; then
      SIGSTREAM_RETENTION_MAX_BYTES=100000 scripts/dev up --restart --fresh --no-build > "$out/$name.up.log" 2>&1
      python3 "$here/raise_stream_max_bytes.py" "$(cat .run/pids/nats.port)" SIGSTREAM 1073741824 >> "$out/$name.up.log"
    else
      scripts/dev up --restart --fresh --no-build > "$out/$name.up.log" 2>&1
    fi
    echo "== $name $(date -u +%T)"
    SIGSTREAM_JOIN_TIMEOUT= build/sigstream-bench --systems sigstream --phases signal --rooms "$rooms" \
      --room-spread "${condition##*-}" "${steps[@]}" --duration 20s --rate-step 0 --search-steps 0 \
      --trace "$out/$name.trace" > "$out/$name.txt" 2>&1
    python3 "$here/trace_summary.py" --steps 1 "$out/$name.trace" | tail -n +2
  done
done
scripts/dev down > /dev/null 2>&1 || true
