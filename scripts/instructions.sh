#!/usr/bin/env bash
# Client instructions per call (callgrind), SDK against raw redis-rs, on one current-thread task.
# Usage: scripts/instructions.sh [contender...]   (default: redis-db raw raw-resp3 redis-db-handle-per-call)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo bench --no-run --bench calls 2>&1 | sed -n 's/.*(\(.*calls-[0-9a-f]*\))$/\1/p' | tail -1)
[ -x "$bin" ] || { echo "no calls bench binary" >&2; exit 1; }
small=${SMALL:-2000}
large=${LARGE:-12000}
out=$(mktemp -d)
contenders=("$@")
[ ${#contenders[@]} -gt 0 ] || contenders=(redis-db raw raw-resp3 redis-db-handle-per-call)
for c in "${contenders[@]}"; do
  for n in "$small" "$large"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$c.$n" "$bin" --bench "$c" "$n" 2>/dev/null
  done
  a=$(callgrind_annotate "$out/$c.$small" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  b=$(callgrind_annotate "$out/$c.$large" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  echo "INSTR $c $(( (b - a) / (large - small) ))"
done
echo "(callgrind files in $out)"
