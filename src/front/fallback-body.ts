/**
 * Reading the body of a fallback request in steps, within limits checked as
 * the bytes arrive: first a fixed prefix (a session request's KEY frame, so a
 * request without the session's key is refused before more of it is read),
 * then the rest, within a byte limit and a budget a session may lower while
 * it arrives. The whole body must arrive within one timeout.
 *
 * A step that what has arrived already answers is answered at once, not with
 * a promise (the caller awaits only a Promise): a session request's body
 * usually comes whole with its head, so the first step waits for it and the
 * next ones do not. The request's listeners are shared functions that find
 * their reader on the request, not closures made per request.
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

/** What else holds bytes of the same budget (a session's input not yet handed to its service). */
export interface BudgetHolder { readonly inboundBuffered: number }

const kReader = Symbol('gatehouse.body');
type ReadRequest = IncomingMessage & { [kReader]?: RequestBody };

function onData(this: ReadRequest, chunk: Buffer): void { this[kReader]?.data(chunk); }
function onEnd(this: ReadRequest): void { this[kReader]?.end(); }
function onGone(this: ReadRequest): void { this[kReader]?.gone(); }
function onTimeout(reader: RequestBody): void { reader.fail('timeout'); }

/** What a waiting step needs: done, or failed (the result), or neither yet (undefined). */
type Step = () => Buffer | BodyError | undefined;

export class RequestBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failed?: BodyError;
  /** the step waiting for more of the body, and whom to tell */
  private waiting?: { step: Step; resolve: (outcome: Buffer | BodyError) => void };
  /** answered: what still arrives is dropped, not kept */
  private stopped = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly req: IncomingMessage, timeoutMs: number) {
    this.timer = setTimeout(onTimeout, timeoutMs, this);
    this.timer.unref?.();
    (req as ReadRequest)[kReader] = this;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  }

  /** The declared length exceeds `limit`: refuse before reading anything. */
  declaredOver(limit: number): boolean {
    const declared = this.req.headers['content-length'];
    return declared !== undefined && Number(declared) > limit;
  }

  /** The first `n` bytes (reading pauses once they are in), or why not. */
  prefix(n: number): Buffer | BodyError | Promise<Buffer | BodyError> {
    return this.when(() => {
      if (this.failed !== undefined) { this.done(); return this.failed; }
      if (this.size < n && !this.ended) return undefined;
      if (this.size < n) return 'short';
      this.req.pause();
      const all = this.take();
      if (all.length > n) this.chunks.push(all.subarray(n));
      this.size = all.length - n;
      return all.subarray(0, n);
    });
  }

  /**
   * Everything after what `prefix` took: at most `limit` bytes, and at no
   * moment more than `budget` less what `holder` holds (read anew at each chunk).
   */
  rest(limit: number, budget = Infinity, holder?: BudgetHolder): Buffer | BodyError | Promise<Buffer | BodyError> {
    this.req.resume();
    return this.when(() => {
      const problem = this.failed
        ?? (this.size > limit ? 'too_big' : this.size > budget - (holder?.inboundBuffered ?? 0) ? 'over_budget' : undefined);
      if (problem !== undefined) { this.done(); return problem; }
      if (!this.ended) return undefined;
      const body = this.take();
      this.done();
      return body;
    });
  }

  /** Stop: the request is answered without (the rest of) its body. */
  done(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** @internal (the request's listeners) */
  data(chunk: Buffer): void {
    if (this.stopped) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  }

  /** @internal */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** @internal */
  gone(): void {
    if (!this.ended) this.fail('gone');
  }

  /** @internal */
  fail(error: BodyError): void {
    this.failed ??= error;
    this.wake();
  }

  /** `step`'s outcome now when it has one, else a promise of it (the step runs again as bytes arrive). */
  private when(step: Step): Buffer | BodyError | Promise<Buffer | BodyError> {
    const now = step();
    if (now !== undefined) return now;
    return new Promise((resolve) => { this.waiting = { step, resolve }; });
  }

  private wake(): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    const outcome = waiting.step();
    if (outcome === undefined) return;
    this.waiting = undefined;
    waiting.resolve(outcome);
  }

  private take(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    return all;
  }
}
