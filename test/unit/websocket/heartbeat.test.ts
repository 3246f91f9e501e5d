import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat } from '../../../src/websocket/heartbeat.js';
import { snapshotResources, assertNoLeaks } from '../../helpers/leaks.js';

describe('Heartbeat', () => {
  it('ticks every member with one shared interval, and frees it when empty', async () => {
    const before = snapshotResources();
    // The heartbeat interval is unref'd by design; keep the loop alive meanwhile.
    const keep = setTimeout(() => {}, 10_000);
    const hb = new Heartbeat(1000);
    const ticks: number[] = [0, 0];
    let done!: () => void;
    const enough = new Promise<void>((r) => { done = r; });
    const a = { tick: () => { ticks[0]++; if (ticks[0] >= 3 && ticks[1] >= 3) done(); } };
    const b = { tick: () => { ticks[1]++; } };
    hb.add(a, 40); // asks for a 10 ms tick
    hb.add(b);
    assert.equal(hb.size, 2);
    await enough;
    hb.delete(a);
    hb.delete(b);
    assert.equal(hb.size, 0);
    clearTimeout(keep);
    await assertNoLeaks(before);
  });

  it('a throwing member does not stop the others', async () => {
    const keep = setTimeout(() => {}, 10_000);
    const hb = new Heartbeat(1000);
    let ok = 0;
    let done!: () => void;
    const p = new Promise<void>((r) => { done = r; });
    const bad = { tick: () => { throw new Error('boom'); } };
    const good = { tick: () => { if (++ok === 2) done(); } };
    hb.add(bad, 40);
    hb.add(good);
    await p;
    hb.delete(bad);
    hb.delete(good);
    clearTimeout(keep);
    assert.equal(ok, 2);
  });
});
