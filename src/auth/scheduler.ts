/**
 * One timer for many deadlines: a binary min-heap of due times with a single
 * Node timer armed for the earliest. Tens of thousands of connections each
 * with an expiry and a re-check interval cost one timer, not two per socket.
 * Cancelled entries are dropped lazily (and the heap compacted when they
 * dominate), and release their target at once so nothing stays reachable.
 *
 * A task's target is a function or an object with `onDeadline`: per-connection
 * watches pass themselves, so a deadline costs one task object and no closures.
 */
export interface ScheduledTask {
  readonly at: number;
  cancel(): void;
}

/** An object called back when one of its tasks is due (told which one). */
export interface DeadlineTarget {
  onDeadline(task: ScheduledTask): void;
}

type Target = DeadlineTarget | (() => void);

class Task implements ScheduledTask {
  constructor(
    private readonly scheduler: DeadlineScheduler,
    readonly at: number,
    /** Undefined once run or cancelled. */
    public target: Target | undefined,
  ) {}

  cancel(): void {
    if (this.target === undefined) return;
    this.target = undefined;
    this.scheduler.noteCancelled();
  }
}

const MAX_TIMEOUT = 2 ** 31 - 1;

export class DeadlineScheduler {
  private heap: Task[] = [];
  private cancelled = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs `target` (a function, or its `onDeadline` with the task) at epoch-ms
   * `at` (or soon after); a target that throws does not stop others.
   */
  schedule(at: number, target: Target): ScheduledTask {
    const task = new Task(this, at, target);
    this.push(task);
    if (at < this.armedFor) this.arm();
    return task;
  }

  /** @internal A task was cancelled: compact when cancelled ones dominate the heap. */
  noteCancelled(): void {
    this.cancelled++;
    if (this.cancelled > 1024 && this.cancelled * 2 > this.heap.length) this.compact();
  }

  /** Live (not cancelled, not run) tasks. */
  get size(): number {
    return this.heap.length - this.cancelled;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    while (this.heap.length > 0 && this.heap[0].target === undefined) { this.pop(); this.cancelled--; }
    if (this.heap.length === 0) return;
    const at = this.heap[0].at;
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMEOUT, Math.max(0, at - this.now())));
    // Deadlines must never keep a stopping process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const task = this.pop()!;
      const target = task.target;
      if (target === undefined) { this.cancelled--; continue; }
      task.target = undefined;
      try {
        if (typeof target === 'function') target();
        else target.onDeadline(task);
      } catch { /* a task's failure is its own */ }
    }
    this.arm();
  }

  private compact(): void {
    this.heap = this.heap.filter((e) => e.target !== undefined);
    this.cancelled = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(e: Task): void {
    this.heap.push(e);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent].at <= e.at) break;
      this.heap[i] = this.heap[parent];
      i = parent;
    }
    this.heap[i] = e;
  }

  private pop(): Task | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (this.heap.length > 0 && last) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(i: number): void {
    const h = this.heap;
    const e = h[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      if (child + 1 < h.length && h[child + 1].at < h[child].at) child++;
      if (h[child].at >= e.at) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = e;
  }
}
