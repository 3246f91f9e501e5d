/**
 * Leak check for tests: snapshot the process's active resources (sockets,
 * servers, timers) before a test, and after it assert that nothing is left
 * beyond the snapshot. Waits briefly, because sockets close asynchronously.
 */
import assert from 'node:assert/strict';

export type ResourceCounts = Map<string, number>;

export function snapshotResources(): ResourceCounts {
  const counts: ResourceCounts = new Map();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** Resource types that grew since `before`, with how many more. */
export function resourceGrowth(before: ResourceCounts, ignore: string[] = []): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [type, n] of snapshotResources()) {
    if (ignore.includes(type)) continue;
    const d = n - (before.get(type) ?? 0);
    if (d > 0) grown[type] = d;
  }
  return grown;
}

/**
 * Assert that no socket, server or timer outlives the test. Polls for up to
 * `timeoutMs` (closing is asynchronous), then fails listing what is left.
 */
export async function assertNoLeaks(before: ResourceCounts, opts: { timeoutMs?: number; ignore?: string[] } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 1000);
  let grown = resourceGrowth(before, opts.ignore);
  while (Object.keys(grown).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    grown = resourceGrowth(before, opts.ignore);
  }
  // The polling timers above are gone by now; anything listed is a real leak.
  assert.deepEqual(grown, {}, `resources left after the test: ${JSON.stringify(grown)}`);
}
