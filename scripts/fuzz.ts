/**
 * The long fuzz run: every target of test/fuzz/targets.ts (or those named)
 * on at least 10 million generated inputs each, in batches with their own
 * seeds (printed, so a run can be repeated). An input that breaks a target is
 * shrunk by fast-check and kept as test/fuzz/crashes/<target>-<hash>.bin,
 * which `npm test` replays from then on; the run exits 1.
 *
 *   node --import tsx scripts/fuzz.ts [--runs 10000000] [--batch 100000] [--seed N] [target ...]
 *
 * Coverage-guided fuzzing (Jazzer.js) does not load on this platform's glibc;
 * the generators start from valid inputs of each format and mutate them, so
 * that the runs reach past the first checks.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { TARGETS } from '../test/fuzz/targets.js';
import { CRASH_DIR, inputs } from '../test/fuzz/corpus.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const runs = option('--runs', 10_000_000);
const batch = option('--batch', 100_000);
let seed = option('--seed', Date.now() & 0x7fffffff);
const named = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const targets = named.length > 0 ? TARGETS.filter((t) => named.includes(t.name)) : TARGETS;
if (targets.length === 0) {
  console.error(`no such target; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.exit(2);
}

let failed = false;
for (const target of targets) {
  const started = Date.now();
  let done = 0;
  console.log(`${target.name}: ${runs} inputs, batches of ${batch}, first seed ${seed}`);
  while (done < runs) {
    const n = Math.min(batch, runs - done);
    const result = fc.check(fc.property(inputs(target.name), (data) => { target.run(data); }), { numRuns: n, seed });
    if (result.failed) {
      const data = Buffer.from(result.counterexample?.[0] ?? new Uint8Array());
      mkdirSync(CRASH_DIR, { recursive: true });
      const file = join(CRASH_DIR, `${target.name}-${createHash('sha256').update(data).digest('hex').slice(0, 16)}.bin`);
      writeFileSync(file, data);
      console.log(`${target.name}: FAILED at seed ${seed} after ${done + result.numRuns} inputs: ${String(result.errorInstance)}`);
      console.log(`${target.name}: input kept as ${file} (${data.length} bytes)`);
      failed = true;
      break;
    }
    done += n;
    seed = (seed + 1) & 0x7fffffff;
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`\r${target.name}: ${done} inputs, ${Math.round(done / seconds)}/s   `);
  }
  process.stdout.write('\n');
}
process.exit(failed ? 1 : 0);
