// Builds the client: an ESM module (dist/index.js), a browser bundle exposing
// the global `Gatehouse` (dist/gatehouse.js, served by the gateway at
// /.gatehouse/client.js) and TypeScript declarations (dist/*.d.ts).
// Uses the esbuild and typescript installed at the repository root.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, 'src/index.ts');
const common = { entryPoints: [entry], bundle: true, target: ['es2020'], legalComments: 'none', logLevel: 'warning' };

await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', outfile: join(here, 'dist/index.js'), sourcemap: true }),
  build({ ...common, format: 'iife', globalName: 'Gatehouse', platform: 'browser', minify: true, outfile: join(here, 'dist/gatehouse.js') }),
]);

if (!process.argv.includes('--no-types')) {
  const require = createRequire(import.meta.url);
  const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
}
