// Builds the admin dashboard served by the gateway (src/admin/dashboard-assets.ts):
// dist/dashboard.js (our code with uPlot bundled — no CDN), dist/dashboard.css
// (uPlot's stylesheet and ours) and dist/index.html. Uses the esbuild at the repository root.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(here, 'src/dashboard.ts')], bundle: true, format: 'iife', platform: 'browser',
  target: ['es2020'], minify: true, legalComments: 'none', logLevel: 'warning', outfile: join(dist, 'dashboard.js'),
});
const require = createRequire(import.meta.url);
const uplotCss = readFileSync(join(dirname(require.resolve('uplot/package.json')), 'dist/uPlot.min.css'), 'utf8');
writeFileSync(join(dist, 'dashboard.css'), `${uplotCss}\n${readFileSync(join(here, 'dashboard.css'), 'utf8')}`);
copyFileSync(join(here, 'index.html'), join(dist, 'index.html'));
