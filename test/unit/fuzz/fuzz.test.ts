/**
 * The short fuzz run of `npm test`: every target (test/fuzz/targets.ts) on a
 * few thousand generated inputs, and every kept crash input replayed. The
 * long run (at least 10 million inputs per target) is `scripts/fuzz.ts`.
 */
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TARGETS } from '../../fuzz/targets.js';
import { crashInputs, inputs } from '../../fuzz/corpus.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

describe('fuzz targets (short run)', () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${RUNS} generated inputs`, { timeout: 120_000 }, () => {
      fc.assert(fc.property(inputs(target.name), (data) => { target.run(data); }), { numRuns: RUNS });
    });
    it(`${target.name}: kept crash inputs stay fixed`, () => {
      for (const { data } of crashInputs(target.name)) target.run(data);
    });
  }
});
