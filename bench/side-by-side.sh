#!/usr/bin/env bash
# The gateway and the Node peer (bench/peer) side by side on one data set:
# both serve the same related.db; relatedload opens the same interactions
# at fixed arrival rates, alternating the servers run by run, and reads
# each server's CPU from /proc/PID/stat. Prints every run and the medians.
# A benchmark tool, not part of CI.
#
#   bench/side-by-side.sh DATA_DIR [RATES] [REPEATS] [DURATION]
#   bench/side-by-side.sh /tmp/bench10k "200 1000" 5 10s
#
# DATA_DIR holds a seeded database (relatedd seed --data-dir DATA_DIR
# --customers 1000 --seed 1). The peer must be installed (bench/peer/README.md).
# Extra flags for relatedd serve: RELATEDD_FLAGS; the load average is
# printed before every run, and every figure is a median of REPEATS runs.
set -euo pipefail
dir=${1:?usage: bench/side-by-side.sh DATA_DIR [RATES] [REPEATS] [DURATION]}
rates=${2:-200 1000}
repeats=${3:-5}
duration=${4:-10s}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=$(mktemp -d)
trap 'kill $gw $peer 2>/dev/null || true; rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/relatedd" ./cmd/relatedd && go build -o "$bin/relatedload" ./cmd/relatedload)

key=$("$bin/relatedd" keys create --data-dir "$dir" --tenant demo --role agent --name side-by-side 2>/dev/null | grep -o 'rk_[A-Za-z0-9_-]*' | head -1)
"$bin/relatedd" serve --data-dir "$dir" --addr 127.0.0.1:18193 --rate-limit -1 --max-inflight -1 ${RELATEDD_FLAGS:-} >"$bin/gw.out" 2>"$bin/gw.log" &
gw=$!
(cd "$here/peer" && NODE_ENV=production exec node server.js --db "$dir/related.db" --port 18194) >"$bin/peer.log" 2>&1 &
peer=$!
for _ in $(seq 50); do
  curl -sf -o /dev/null http://127.0.0.1:18193/readyz && curl -s -o /dev/null http://127.0.0.1:18194/ && break
  sleep 0.2
done

echo "# same data: $("$bin/relatedload" -check-peer http://127.0.0.1:18194 -url http://127.0.0.1:18193 -key "$key" -data-dir "$dir" -sample 2000 -quiet)"
echo -e "# run\tserver\trate\trequests\terrors\tp50_ms\tp99_ms\tcpu_ms_per_request\tcores\trss_mib\tpeak_rss_mib\tload1\tanon_rss_mib\tpss_mib"
out="$bin/runs.tsv"
for r in $(seq "$repeats"); do
  for rate in $rates; do
    order="gateway peer"
    if (( r % 2 == 0 )); then order="peer gateway"; fi
    for who in $order; do
      if [[ $who == gateway ]]; then
        line=$("$bin/relatedload" -url http://127.0.0.1:18193 -key "$key" -data-dir "$dir" -mix open=1 -pid $gw -rate "$rate" -duration "$duration" -calibrate 0 -quiet -summary)
      else
        line=$("$bin/relatedload" -peer -url http://127.0.0.1:18194 -data-dir "$dir" -mix open=1 -pid $peer -rate "$rate" -duration "$duration" -quiet -summary)
      fi
      echo -e "$r\t$line" | tee -a "$out"
    done
  done
done

echo
echo "# medians of $repeats runs (CPU per request from /proc/PID/stat)"
echo "| rate | gateway CPU/request | peer CPU/request | ratio | gateway p99 | peer p99 | gateway peak RSS (anonymous, Pss) | peer peak RSS (anonymous, Pss) | load1 at start (range) |"
echo "|---|---|---|---|---|---|---|---|---|"
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
for rate in $rates; do
  g=$(awk -v r="$rate" '$2=="gateway" && $3==r {print $8}' "$out" | median)
  p=$(awk -v r="$rate" '$2=="peer" && $3==r {print $8}' "$out" | median)
  gp=$(awk -v r="$rate" '$2=="gateway" && $3==r {print $7}' "$out" | median)
  pp=$(awk -v r="$rate" '$2=="peer" && $3==r {print $7}' "$out" | median)
  grss=$(awk -v r="$rate" '$2=="gateway" && $3==r {print $11}' "$out" | median)
  prss=$(awk -v r="$rate" '$2=="peer" && $3==r {print $11}' "$out" | median)
  ganon=$(awk -v r="$rate" '$2=="gateway" && $3==r {print $13}' "$out" | median)
  panon=$(awk -v r="$rate" '$2=="peer" && $3==r {print $13}' "$out" | median)
  gpss=$(awk -v r="$rate" '$2=="gateway" && $3==r {print $14}' "$out" | median)
  ppss=$(awk -v r="$rate" '$2=="peer" && $3==r {print $14}' "$out" | median)
  load=$(awk -v r="$rate" '$3==r {print $12}' "$out" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}')
  ratio=$(awk -v g="$g" -v p="$p" 'BEGIN {printf "%.2f", g/p}')
  echo "| $rate/s | $g ms | $p ms | $ratio | $gp ms | $pp ms | $grss MiB ($ganon, $gpss) | $prss MiB ($panon, $ppss) | $load |"
done
