#!/usr/bin/env bash
# The layering of src/, checked on every #include (docs/architecture.md,
# "Source layout"). CMake cannot enforce it alone: Boost's headers are
# header-only and sit in /usr/include, reachable from any target. Each
# folder has a list of what it must not include; a violation fails the
# test. Known debts are listed below, file by file, and the test also
# fails when one of them is paid but still listed, so the list only shrinks.
#
# Usage: check_layers.sh [ROOT]: ROOT is the checkout (default: this one);
# check_layers_test.sh runs it on copies with a crossing planted.
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"

# folder|forbidden include pattern (extended regex on the #include line)
RULES=(
  'src/domain|"(protocol|history|auth|admission|ports|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|fmt|openssl)/'
  'src/protocol|"(history|auth|admission|ports|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|fmt|openssl)/'
  'src/history|"(auth|admission|ports|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|openssl)/'
  'src/auth|"(history|admission|ports|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|fmt)/'
  'src/admission|"(domain|protocol|history|auth|ports|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|fmt|openssl)/'
  'src/ports|"(protocol|history|auth|admission|service|adapters|server|app|cli)/|<(boost|nats|hiredis|google|spdlog|fmt|openssl)/'
  'src/service|"(adapters|server|app|cli)/|"sigstream/events/|<(nats|hiredis|google|openssl)/|<boost/beast'
  'src/service/room|"(adapters|server|app|cli)/|"service/(history|cluster)/|"sigstream/events/|<(nats|hiredis|google|openssl)/|<boost/beast'
  'src/service/history|"(adapters|server|app|cli)/|"service/(room|cluster)/|"sigstream/events/|<(nats|hiredis|google|openssl)/|<boost/beast'
  'src/service/cluster|"(adapters|server|app|cli)/|"service/history/|"sigstream/events/|<(nats|hiredis|google|openssl)/|<boost/beast'
  'src/adapters/codec|"(protocol|history|auth|admission|service|server|app|cli|adapters/(nats|redis))/|<(boost|nats|hiredis|spdlog|fmt|openssl)/'
  'src/adapters/nats|"(service|server|app|cli|adapters/redis)/|<(hiredis|google)/|<boost/beast'
  'src/adapters/redis|"(service|server|app|cli|adapters/(nats|codec))/|<(nats|google)/|<boost/beast'
  'src/server|"(adapters|app|cli)/|"sigstream/events/|<(nats|hiredis|google)/'
  'src/app|"cli/|"sigstream/events/'
)

# Crossings allowed by design, file|included path. None: the codec
# implements the stored_format port, which its rule allows.
ALLOWED=(
)

# Debts: none left. An entry is file|included path, with the reason in a
# comment above it.
KNOWN=(
)

# Every folder with sources has a rule; only the composition (cli) may
# reach everything.
for dir in $(find src -type f \( -name '*.cpp' -o -name '*.hpp' \) -printf '%h\n' | sort -u); do
  [[ $dir == src/cli ]] && continue
  covered=0
  for rule in "${RULES[@]}"; do [[ ${rule%%|*} == "$dir" ]] && covered=1; done
  (( covered )) || { echo "layering: $dir has no rule in $0" >&2; exit 1; }
done

found=()
for rule in "${RULES[@]}"; do
  folder=${rule%%|*}
  pattern=${rule#*|}
  [[ -d $folder ]] || { echo "no folder $folder: update tests/layers/check_layers.sh" >&2; exit 1; }
  while IFS= read -r hit; do
    [[ -z $hit ]] && continue
    file=${hit%%:*}
    included=$(sed -E 's/^[^:]*:[0-9]+:#include [<"]([^>"]+)[>"].*/\1/' <<<"$hit")
    found+=("$file|$included")
  done < <(grep -nE "^#include " "$folder"/*.hpp "$folder"/*.cpp 2>/dev/null | grep -E ":#include ($pattern)" || true)
done

status=0
for entry in "${found[@]}"; do
  known=0
  for debt in "${KNOWN[@]}" "${ALLOWED[@]}"; do [[ $entry == "$debt" ]] && known=1; done
  if (( !known )); then
    echo "layering: ${entry%%|*} includes ${entry#*|}, which its layer must not (see docs/architecture.md)" >&2
    status=1
  fi
done
for debt in "${KNOWN[@]}"; do
  still=0
  for entry in "${found[@]}"; do [[ $entry == "$debt" ]] && still=1; done
  if (( !still )); then
    echo "layering: ${debt%%|*} no longer includes ${debt#*|}: remove it from KNOWN in $0" >&2
    status=1
  fi
done
(( status == 0 )) && echo "layering: ${#KNOWN[@]} known debts, no crossing beyond them"
exit $status
