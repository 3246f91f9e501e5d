/**
 * Reading the body of a fallback request in steps, within limits checked as
 * the bytes arrive: first a fixed prefix (a session request's KEY frame, so a
 * request without the session's key is refused before more of it is read),
 * then the rest, within a byte limit and a budget a session may lower while
 * it arrives. The whole body must arrive within one timeout.
 */
import type { IncomingMessage } from 'node:http';

export type BodyError =
  /** the body is larger than the limit (Content-Length, or bytes as they arrive) */
  | 'too_big'
  /** the bytes so far pass the budget */
  | 'over_budget'
  /** it did not arrive in time */
  | 'timeout'
  /** it ended before the prefix was complete */
  | 'short'
  /** the client went away */
  | 'gone';

export class RequestBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failed?: BodyError;
  private wake?: () => void;
  /** answered: what still arrives is dropped, not kept */
  private stopped = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly req: IncomingMessage, timeoutMs: number) {
    this.timer = setTimeout(() => this.fail('timeout'), timeoutMs);
    this.timer.unref?.();
    req.on('data', (chunk: Buffer) => {
      if (this.stopped) return;
      this.chunks.push(chunk);
      this.size += chunk.length;
      this.wake?.();
    });
    req.on('end', () => { this.ended = true; this.wake?.(); });
    const gone = (): void => { if (!this.ended) this.fail('gone'); };
    req.on('error', gone);
    req.on('close', gone);
  }

  /** The declared length exceeds `limit`: refuse before reading anything. */
  declaredOver(limit: number): boolean {
    const declared = this.req.headers['content-length'];
    return declared !== undefined && Number(declared) > limit;
  }

  /** The first `n` bytes (reading pauses once they are in), or why not. */
  async prefix(n: number): Promise<Buffer | BodyError> {
    const outcome = await this.until(() => this.size >= n || this.ended);
    if (outcome) return outcome;
    if (this.size < n) return 'short';
    this.req.pause();
    const all = this.take();
    if (all.length > n) this.chunks.push(all.subarray(n));
    this.size = all.length - n;
    return all.subarray(0, n);
  }

  /**
   * Everything after what `prefix` took: at most `limit` bytes, and at no
   * moment more than `budget()` (read anew at each chunk).
   */
  async rest(limit: number, budget: () => number = () => Infinity): Promise<Buffer | BodyError> {
    this.req.resume();
    const outcome = await this.until(() => this.ended, () => (this.size > limit ? 'too_big' : this.size > budget() ? 'over_budget' : undefined));
    if (outcome) return outcome;
    const body = this.take();
    this.done();
    return body;
  }

  /** Stop: the request is answered without (the rest of) its body. */
  done(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Resolves when `ready`, or with the first problem (`check`'s, or a failure) — then reading stops. */
  private until(ready: () => boolean, check: () => BodyError | undefined = () => undefined): Promise<BodyError | undefined> {
    return new Promise((resolve) => {
      const step = (): void => {
        const problem = this.failed ?? check();
        if (problem !== undefined) { this.wake = undefined; this.done(); resolve(problem); return; }
        if (ready()) { this.wake = undefined; resolve(undefined); }
      };
      this.wake = step;
      step();
    });
  }

  private fail(error: BodyError): void {
    this.failed ??= error;
    this.wake?.();
  }

  private take(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    return all;
  }
}
