// Builds the agent console that the Go package web embeds (web/console/).
//
//   node build.mjs OUTDIR
//
// Output (served under /console/, the page itself at /):
//   index.html    page shell; references the assets by absolute path with a
//                 ?v=<content hash> query so they can be cached for a long time
//   console.js    Preact + graphql-ws + the console, minified IIFE
//   console.css   styles, minified
//   licenses.txt  licenses of every npm package that ends up in the bundle
//
// Nothing in the output refers to another host, and the build is
// deterministic: the same package-lock.json gives byte-identical files.
// It type-checks first (tsc --noEmit) and fails on any type error.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = process.argv[2];
if (!outdir) {
  console.error('usage: node build.mjs OUTDIR');
  process.exit(2);
}

execFileSync(process.execPath, [path.join(here, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', here], {
  stdio: 'inherit',
});

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { console: 'src/main.tsx' },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  platform: 'browser',
  define: { 'process.env.NODE_ENV': '"production"' },
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
});

// licenses.txt: every npm package with at least one file in the bundle.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) continue;
  if (!packages.has(m[1])) packages.set(m[1], path.join(here, input.slice(0, m.index + m[0].length)));
}
const sections = [];
for (const [name, dir] of [...packages].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
  const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'));
  const licenseFile = (await fs.readdir(dir)).sort().find((f) => /^(licen[sc]e|copying)(\.|$)/i.test(f));
  const text = licenseFile
    ? (await fs.readFile(path.join(dir, licenseFile), 'utf8')).trim()
    : `(no license file shipped; package.json says: ${JSON.stringify(pkg.license ?? 'unknown')})`;
  sections.push(`${'='.repeat(78)}\n${name}@${pkg.version} (${pkg.license ?? 'unknown'})\n${'='.repeat(78)}\n\n${text}\n`);
}
await fs.writeFile(
  path.join(outdir, 'licenses.txt'),
  `Third-party software bundled in console.js\n\n${sections.join('\n')}`,
);

const version = async (file) =>
  createHash('sha256').update(await fs.readFile(path.join(outdir, file))).digest('hex').slice(0, 12);
const template = await fs.readFile(path.join(here, 'src/index.html'), 'utf8');
const html = template
  .replace('{{JS_VERSION}}', await version('console.js'))
  .replace('{{CSS_VERSION}}', await version('console.css'));
if (/{{\w+}}/.test(html)) throw new Error('unreplaced placeholder in index.html');
await fs.writeFile(path.join(outdir, 'index.html'), html);
