#!/usr/bin/env node
// Runs the test files with node's built-in runner, TypeScript through tsx.
// Node 20's --test does not expand globs, so the file list is built here.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|conformance ...] [--only name-substring]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args.splice(onlyIdx, 2)[1] : undefined;
const suites = args.length > 0 ? args : ['unit', 'integration', 'e2e', 'conformance'];

function walk(dir) {
  let out = [];
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = suites.flatMap((s) => walk(join('test', s))).filter((f) => !only || f.includes(only));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// Every test has a deadline: a test that waits for something that never
// happens fails (naming itself) instead of hanging the run. Node applies it to
// each file's run as a whole too, so it is generous (5 min: the longest file
// takes about 1 min on a quiet machine); tests that know they need less say
// so with their own { timeout }.
const timeout = process.env.TEST_TIMEOUT_MS ?? '300000';
const child = spawn(process.execPath, [
  '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, '--test-reporter=spec', ...files,
], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : code ?? 1));
