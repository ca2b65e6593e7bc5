// Builds the offline GraphiQL bundle that the Go package web embeds.
//
//   node build.mjs OUTDIR
//
// Output (all paths relative to OUTDIR, served under /graphiql/):
//   index.html      page shell; references the assets by absolute path with a
//                   ?v=<content hash> query so they can be cached for a long time
//   graphiql.js     React + GraphiQL + graphql-ws, minified IIFE
//   graphiql.css    GraphiQL styles, minified
//   fonts/*.woff*   Roboto and Fira Code, one file per unicode-range subset (the
//                   browser only downloads the subsets a page actually uses)
//   licenses.txt    licenses of every npm package that ends up in the bundle,
//                   plus FONTS-LICENSE.txt
//
// Nothing in the output refers to another host. The build is deterministic:
// the same package-lock.json gives byte-identical files.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
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

// Names for the unicode-range subsets used by @graphiql/react's font CSS,
// keyed by the first range of each @font-face block.
const subsetNames = {
  'U+0000-00FF': 'latin',
  'U+0100-024F': 'latin-ext',
  'U+0102-0103': 'vietnamese',
  'U+0370-03FF': 'greek',
  'U+1F00-1FFF': 'greek-ext',
  'U+0400-045F': 'cyrillic',
  'U+0460-052F': 'cyrillic-ext',
};

// The font CSS files of @graphiql/react inline every font as a base64 data:
// URL (~360 kB). This plugin turns each of them into a separate .woff2 file
// (emitted by esbuild's "file" loader under fonts/), so the CSS stays small and
// the browser fetches only the subsets it needs.
const fontsPlugin = {
  name: 'split-inline-fonts',
  setup(build) {
    const fonts = new Map();
    build.onLoad({ filter: /[\\/]@graphiql[\\/]react[\\/]font[\\/][^\\/]+\.css$/ }, async (args) => {
      const css = await fs.readFile(args.path, 'utf8');
      let count = 0;
      const contents = css.replace(/@font-face\s*{[^}]*}/g, (block) => {
        const family = /font-family:\s*([^;]+);/.exec(block)?.[1].replace(/['"]/g, '').trim();
        const style = /font-style:\s*([^;]+);/.exec(block)?.[1].trim();
        const weight = /font-weight:\s*([^;]+);/.exec(block)?.[1].trim();
        const range = /unicode-range:\s*(U\+[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)?)/.exec(block)?.[1];
        const data = /url\(\s*['"]?data:font\/(woff2?);base64,([A-Za-z0-9+/=]+)['"]?\s*\)/.exec(block);
        if (!family || !style || !weight || !range || !data) {
          throw new Error(`${args.path}: unexpected @font-face block: ${block.slice(0, 200)}`);
        }
        const subset = subsetNames[range];
        if (!subset) throw new Error(`${args.path}: unknown unicode-range ${range}`);
        const name = `${family.toLowerCase().replace(/\s+/g, '-')}-${weight}-${style}-${subset}.${data[1]}`;
        fonts.set(name, Buffer.from(data[2], 'base64'));
        count++;
        return block.replace(data[0], `url(graphiql-font:${name})`);
      });
      if (count === 0) throw new Error(`${args.path}: no @font-face blocks found`);
      return { contents, loader: 'css' };
    });
    build.onResolve({ filter: /^graphiql-font:/ }, (args) => ({
      path: args.path.slice('graphiql-font:'.length),
      namespace: 'graphiql-font',
    }));
    build.onLoad({ filter: /.*/, namespace: 'graphiql-font' }, (args) => {
      const contents = fonts.get(args.path);
      if (!contents) throw new Error(`unknown font ${args.path}`);
      return { contents, loader: 'file' };
    });
  },
};

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { graphiql: 'src/index.jsx' },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  platform: 'browser',
  define: { 'process.env.NODE_ENV': '"production"' },
  jsx: 'automatic',
  // Full licenses go to licenses.txt (below); drop the scattered comments.
  legalComments: 'none',
  sourcemap: false,
  assetNames: 'fonts/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  plugins: [fontsPlugin],
});

// licenses.txt: every npm package with at least one file in the bundle.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) continue;
  const dir = path.join(here, input.slice(0, m.index + m[0].length));
  if (!packages.has(m[1])) packages.set(m[1], dir);
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
const fontLicenses = (await fs.readFile(path.join(here, 'FONTS-LICENSE.txt'), 'utf8')).trim();
await fs.writeFile(
  path.join(outdir, 'licenses.txt'),
  `Third-party software bundled in graphiql.js, graphiql.css and fonts/\n\n${sections.join('\n')}\n${fontLicenses}\n`,
);

// index.html, with cache-busting content hashes on the two assets.
const version = async (file) =>
  createHash('sha256').update(await fs.readFile(path.join(outdir, file))).digest('hex').slice(0, 12);
for (const f of ['graphiql.js', 'graphiql.css']) {
  if (!existsSync(path.join(outdir, f))) throw new Error(`esbuild did not write ${f}`);
}
const template = await fs.readFile(path.join(here, 'src/index.html'), 'utf8');
const html = template
  .replace('{{JS_VERSION}}', await version('graphiql.js'))
  .replace('{{CSS_VERSION}}', await version('graphiql.css'));
if (/{{\w+}}/.test(html)) throw new Error('unreplaced placeholder in index.html');
await fs.writeFile(path.join(outdir, 'index.html'), html);
