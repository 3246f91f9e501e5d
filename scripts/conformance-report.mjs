#!/usr/bin/env node
// Runs the Autobahn conformance suite against the gateway and rewrites
// docs/conformance.md with the verdict of every case.
// Usage: node scripts/conformance-report.mjs [output.md]
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const out = resolve(process.argv[2] ?? 'docs/conformance.md');
const child = spawn(process.execPath, [
  '--import', 'tsx', '--test', '--test-reporter=dot', 'test/conformance/autobahn.test.ts',
], { stdio: 'inherit', env: { CONFORMANCE_DEFLATE_MESSAGES: '1000', ...process.env, CONFORMANCE_REPORT: out } });
child.on('exit', (code, signal) => {
  console.log(`\nreport written to ${out}${code === 0 ? '' : ' (some cases failed: see above and the report)'}`);
  process.exit(signal ? 1 : code ?? 1);
});
