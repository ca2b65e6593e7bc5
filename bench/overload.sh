#!/usr/bin/env bash
# Overload and recovery: relatedload offers the gateway RATE opens a second
# for 10 s, then three times RATE for 10 s, then RATE again for 20 s, in one
# open loop (latency from each request's due time), and reports each phase,
# the recovery window (the last phase from 2 s after its start) and every
# second, with the server's CPU. RATE should be the highest rate the
# gateway sustains with p99 under 10 ms (BENCHMARKS.md measures it).
# A benchmark tool, not part of CI.
#
#   bench/overload.sh DATA_DIR RATE [peer]
#
# With "peer", the Node peer (bench/peer) is driven the same way instead.
# Extra flags for relatedd serve: RELATEDD_FLAGS.
set -euo pipefail
dir=${1:?usage: bench/overload.sh DATA_DIR RATE [peer]}
rate=${2:?usage: bench/overload.sh DATA_DIR RATE [peer]}
who=${3:-gateway}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/relatedd" ./cmd/relatedd && go build -o "$bin/relatedload" ./cmd/relatedload)
phases="$rate:10s,$((3 * rate)):10s,$rate:20s"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $who == peer ]]; then
  (cd "$here/peer" && NODE_ENV=production exec node server.js --db "$dir/related.db" --port 18194) >"$bin/peer.log" 2>&1 &
  pid=$!
  sleep 2
  "$bin/relatedload" -peer -url http://127.0.0.1:18194 -data-dir "$dir" -mix open=1 -pid $pid -phases "$phases" -quiet
else
  key=$("$bin/relatedd" keys create --data-dir "$dir" --tenant demo --role agent --name overload 2>/dev/null | grep -o 'rk_[A-Za-z0-9_-]*' | head -1)
  "$bin/relatedd" serve --data-dir "$dir" --addr 127.0.0.1:18193 --rate-limit -1 --max-inflight -1 ${RELATEDD_FLAGS:-} >"$bin/gw.out" 2>"$bin/gw.log" &
  pid=$!
  for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18193/readyz && break; sleep 0.2; done
  "$bin/relatedload" -url http://127.0.0.1:18193 -key "$key" -data-dir "$dir" -mix open=1 -pid $pid -phases "$phases" -calibrate 0 -quiet
fi
