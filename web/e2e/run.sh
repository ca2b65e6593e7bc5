#!/usr/bin/env bash
# Browser and client tests (the agent console, GraphiQL, CORS from another
# origin, the graphql-http audit): builds relatedd, starts it
# on a temporary embedded database with demo data, makes an agent key, runs
# web/e2e/tests in headless Chromium (Debian's chromium, driven by
# playwright-core), then stops the server.
#
#   bash web/e2e/run.sh
#
# Needs Go, Node.js >= 20 with npm, and /usr/bin/chromium (installed with
# apt-get when missing and running as root). Screenshots go to
# $ARTIFACTS_DIR (default web/e2e/artifacts, not committed); the server's
# log goes there too.
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$e2e_dir/../.." && pwd)"
export ARTIFACTS_DIR="${ARTIFACTS_DIR:-$e2e_dir/artifacts}"
mkdir -p "$ARTIFACTS_DIR"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "run.sh: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
command -v node >/dev/null || { echo "run.sh: node not found (need Node.js >= 20)" >&2; exit 1; }

(cd "$e2e_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/relatedd" ./cmd/relatedd)

# A port below Linux's ephemeral range (32768 up), where outgoing
# connections take theirs; another attempt on another port if it is taken
# all the same.
for attempt in 1 2 3 4 5; do
  port="${E2E_PORT:-$(( 20000 + RANDOM % 12000 ))}"
  rm -rf "$tmp/data"
  # *.partner.test: tests/cors.test.mjs serves a page there (Chromium maps
  # *.test to this machine) to call the API from another origin.
  "$tmp/relatedd" serve --addr "127.0.0.1:$port" --data-dir "$tmp/data" --seed 50 \
    --cors-origins 'http://localhost:*,http://127.0.0.1:*,http://*.partner.test:*' \
    >"$tmp/stdout.txt" 2>"$ARTIFACTS_DIR/server.log" &
  server_pid=$!
  started=""
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && grep -q 'Related is serving' "$tmp/stdout.txt"; then
      started=1
      break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  [ -n "$started" ] && break
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [ "$attempt" -lt 5 ] && [ -z "${E2E_PORT:-}" ] && grep -q 'address already in use' "$ARTIFACTS_DIR/server.log"; then
    echo "run.sh: port $port is taken; another" >&2
    continue
  fi
  echo "run.sh: the server exited" >&2
  cat "$tmp/stdout.txt" "$ARTIFACTS_DIR/server.log" >&2
  exit 1
done
# The first-start admin key, printed once on stdout.
admin_key="$(grep -o 'rk_[A-Za-z0-9_-]*' "$tmp/stdout.txt" | head -1)"
if [ -z "$admin_key" ]; then
  echo "run.sh: no first-start key in the server's output" >&2
  cat "$tmp/stdout.txt" >&2
  exit 1
fi
# Wait for the demo data (loaded after the key is printed).
for _ in $(seq 1 150); do
  n="$(curl -fsS -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d '{"query":"{ interactions(first: 1) { totalCount } }"}' "http://127.0.0.1:$port/graphql" |
    sed -n 's/.*"totalCount":\([0-9]*\).*/\1/p')"
  [ "${n:-0}" -gt 0 ] && break
  sleep 0.2
done
# The console signs in as an agent with a key of its own.
agent_key="$("$tmp/relatedd" keys create --data-dir "$tmp/data" --tenant demo --role agent --name 'E2E agent' |
  grep -o 'rk_[A-Za-z0-9_-]*' | head -1)"

export RELATED_URL="http://127.0.0.1:$port" RELATED_KEY="$admin_key" RELATED_AGENT_KEY="$agent_key" RELATED_BIN="$tmp/relatedd"
cd "$e2e_dir"
node --test --test-concurrency=1 --test-reporter=spec tests/
echo "screenshots: $ARTIFACTS_DIR"
