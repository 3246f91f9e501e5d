/**
 * A STOMP frame as the parser hands it over, the commands each side may send,
 * and the typed error of bad input (STOMP 1.0, 1.1, 1.2:
 * https://stomp.github.io/stomp-specification-1.2.html).
 */

export type StompVersion = '1.0' | '1.1' | '1.2';

export const STOMP_VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2'];

/** Frames a client sends. */
export const CLIENT_COMMANDS: ReadonlySet<string> = new Set([
  'CONNECT', 'STOMP', 'SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'BEGIN', 'COMMIT', 'ABORT', 'ACK', 'NACK', 'DISCONNECT',
]);

/** Frames a server (broker) sends. */
export const SERVER_COMMANDS: ReadonlySet<string> = new Set(['CONNECTED', 'MESSAGE', 'RECEIPT', 'ERROR']);

/** CONNECT, STOMP and CONNECTED never escape their header values (1.1 and 1.2 keep them readable by 1.0 peers). */
export function escapesHeaders(command: string, version: StompVersion): boolean {
  return version !== '1.0' && command !== 'CONNECT' && command !== 'STOMP' && command !== 'CONNECTED';
}

export class StompFrame {
  constructor(
    readonly command: string,
    /** Decoded header names and values in arrival order, flat: name, value, name, value, ... Repeats are kept. */
    readonly headers: readonly string[],
    /** The frame's bytes exactly as received, command to NUL inclusive (EOLs after it not included). */
    readonly raw: Buffer,
    /** Where the body starts in `raw`. */
    private readonly bodyStart: number,
    /** Some of its bytes arrived in a binary WebSocket message (else all came as text). */
    readonly binary: boolean,
  ) {}

  /** The body: a view into `raw`, without the NUL (made when asked: most frames pass without it). */
  get body(): Buffer {
    return this.raw.subarray(this.bodyStart, this.raw.length - 1);
  }

  /** The value of a header; of its first occurrence when repeated (STOMP 1.2 "Repeated Header Entries"). */
  header(name: string): string | undefined {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }

  /** How many times a header occurs. */
  count(name: string): number {
    const h = this.headers;
    let n = 0;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) n++;
    return n;
  }
}

/** `malformed`: the grammar was broken (close 1002). `too_large`: a size limit was passed (close 1009). */
export type StompErrorKind = 'malformed' | 'too_large';

/** Bad STOMP input. `reason` is a stable code for the audit trail; `message` is for the peer's ERROR frame. */
export class StompError {
  constructor(readonly kind: StompErrorKind, readonly reason: string, readonly message: string) {}
}
