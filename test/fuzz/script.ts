/**
 * How a fuzz input is read: how its bytes are cut into reads, and, for the
 * inspectors that sit between a client and a broker, a conversation of turns.
 *
 * A conversation is a sequence of records `[side, length, ...bytes]`: the low
 * bit of `side` says who speaks (0 the client, 1 the broker), `length` (0-255)
 * how many bytes follow; a record cut short by the end of the input keeps
 * what there is. A longer message is several records of the same side.
 */

/** The read size a first byte stands for: 1..64, or 0 (the whole input in one read). */
export function chopOf(data: Uint8Array): number {
  return data.length === 0 ? 0 : data[0] % 65;
}

/** `buf` cut into reads of `chop` bytes (0: one read). */
export function pieces(buf: Buffer, chop: number): Buffer[] {
  if (chop === 0 || chop >= buf.length) return [buf];
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chop) out.push(buf.subarray(i, i + chop));
  return out;
}

export type Side = 'client' | 'broker';

export interface Turn {
  readonly side: Side;
  readonly bytes: Buffer;
}

/** The turns of a conversation (empty records are skipped). */
export function readConversation(input: Buffer): Turn[] {
  const turns: Turn[] = [];
  let i = 0;
  while (i < input.length) {
    const side: Side = (input[i] & 1) === 1 ? 'broker' : 'client';
    const length = input[i + 1] ?? 0;
    const bytes = input.subarray(i + 2, i + 2 + length);
    if (bytes.length > 0) turns.push({ side, bytes });
    i += 2 + length;
  }
  return turns;
}

/** A conversation as input bytes (for seeds): each turn split into records of at most 255 bytes. */
export function writeConversation(turns: ReadonlyArray<readonly [Side, string | Uint8Array]>): Buffer {
  const out: Buffer[] = [];
  for (const [side, content] of turns) {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'latin1') : Buffer.from(content);
    for (let i = 0; i < bytes.length; i += 255) {
      const record = bytes.subarray(i, i + 255);
      out.push(Buffer.from([side === 'broker' ? 1 : 0, record.length]), record);
    }
  }
  return Buffer.concat(out);
}
