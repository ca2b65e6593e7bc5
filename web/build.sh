#!/usr/bin/env bash
# Rebuilds the GraphiQL page that the Go package web embeds (web/graphiql/).
#
#   bash web/build.sh
#
# Installs the exact dependency tree from web/graphiql-src/package-lock.json
# (npm ci, install scripts disabled), bundles it with esbuild and replaces
# web/graphiql/ with the result. Commit the changed files under web/graphiql/
# together with any change to web/graphiql-src/. Needs Node.js >= 20 and npm;
# the output is deterministic, so rebuilding an unchanged tree changes nothing.
set -euo pipefail

web_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src_dir="$web_dir/graphiql-src"
out_dir="$web_dir/graphiql"

command -v node >/dev/null || { echo "build.sh: node not found (need Node.js >= 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "build.sh: npm not found" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
  echo "build.sh: Node.js >= 20 required, found $(node --version)" >&2
  exit 1
fi

cd "$src_dir"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Build into a temporary directory next to the output, then swap it in, so a
# failed build never leaves web/graphiql/ half written (go:embed needs it).
tmp_dir="$(mktemp -d "$web_dir/.graphiql-build.XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
node build.mjs "$tmp_dir/graphiql"
rm -rf "$out_dir"
mv "$tmp_dir/graphiql" "$out_dir"

cd "$out_dir"
echo "built $out_dir:"
for f in index.html graphiql.js graphiql.css; do
  printf '  %-13s %8d bytes, %7d gzipped\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
printf '  %-13s %8d bytes in %d files\n' "fonts/" "$(cat fonts/* | wc -c)" "$(ls fonts | wc -l)"
