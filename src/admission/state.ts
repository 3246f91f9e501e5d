/**
 * The shared state the admission checks count in (handshake buckets and
 * connection slots, `CheckEnv.shared`): the composition root passes the one it
 * keeps across reloads — in-process, or shared by the workers and machines of
 * a cluster. Without one (a pipeline built alone, as tests do), one is made
 * for that CheckEnv object and kept with it.
 */
import type { SharedState } from '../shared-state/contract.js';
import { MemorySharedState } from '../shared-state/memory.js';

const perEnv = new WeakMap<object, SharedState>();

export function sharedStateOf(env: { shared?: SharedState }): SharedState {
  if (env.shared) return env.shared;
  let s = perEnv.get(env);
  if (!s) {
    s = new MemorySharedState();
    perEnv.set(env, s);
  }
  return s;
}
