#!/usr/bin/env bash
# Rebuilds the agent console that the Go package web embeds (web/console/).
#
#   bash web/build-console.sh
#
# Installs the exact dependency tree from web/console-src/package-lock.json
# (npm ci, install scripts disabled), type-checks and bundles it with esbuild
# and replaces web/console/ with the result. Commit the changed files under
# web/console/ together with any change to web/console-src/. Needs Node.js >= 20
# and npm; the output is deterministic, so rebuilding an unchanged tree changes
# nothing. (web/build.sh builds GraphiQL the same way.)
set -euo pipefail

web_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src_dir="$web_dir/console-src"
out_dir="$web_dir/console"

command -v node >/dev/null || { echo "build-console.sh: node not found (need Node.js >= 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "build-console.sh: npm not found" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
  echo "build-console.sh: Node.js >= 20 required, found $(node --version)" >&2
  exit 1
fi

cd "$src_dir"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Build next to the output, then swap it in, so a failed build never leaves
# web/console/ half written (go:embed needs it).
tmp_dir="$(mktemp -d "$web_dir/.console-build.XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
node build.mjs "$tmp_dir/console"
rm -rf "$out_dir"
mv "$tmp_dir/console" "$out_dir"

cd "$out_dir"
echo "built $out_dir:"
total=0
for f in index.html console.js console.css; do
  gz="$(gzip -9c "$f" | wc -c)"
  total=$((total + gz))
  printf '  %-12s %8d bytes, %7d gzipped\n' "$f" "$(wc -c <"$f")" "$gz"
done
printf '  total        %7d bytes gzipped (the page loads nothing else)\n' "$total"
