/**
 * UTF-8 validation for text messages and close reasons (RFC 6455 §8.1, RFC 3629).
 *
 * `Utf8Validator` is incremental: a text message arrives in fragments and TCP
 * chops, and a code point may be split anywhere. It is a small DFA (in the
 * spirit of Hoehrmann's decoder, but written from the RFC 3629 §4 grammar): bytes
 * are mapped to 12 classes, and a state table says what may follow. The state
 * goes to REJECT at the first byte that can never become valid, so `update`
 * fails fast (overlongs, surrogates, > U+10FFFF fail at their 2nd byte).
 *
 * For long runs the validator hands complete code points to the native
 * `buffer.isUtf8` (simdutf) and keeps only the possibly incomplete tail for the
 * DFA; the result is the same, only faster.
 */
import { isUtf8 } from 'node:buffer';

// Byte classes.
//  0: 00..7F        1: 80..8F        2: 90..9F        3: A0..BF
//  4: C0 C1 F5..FF (never valid)     5: C2..DF (2-byte lead)
//  6: E0            7: E1..EC EE EF  8: ED            9: F0
// 10: F1..F3       11: F4
const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  CLASS[b] =
    b < 0x80 ? 0 : b < 0x90 ? 1 : b < 0xa0 ? 2 : b < 0xc0 ? 3 : b < 0xc2 ? 4 : b < 0xe0 ? 5 : b === 0xe0 ? 6 :
    b === 0xed ? 8 : b < 0xf0 ? 7 : b === 0xf0 ? 9 : b < 0xf4 ? 10 : b === 0xf4 ? 11 : 4;
}

// States.
const ACCEPT = 0; // between code points
const REJECT = 1; // sticky failure
const NEED1 = 2; // one more continuation byte (80..BF)
const NEED2 = 3; // two more continuation bytes
const E0_2ND = 4; // after E0: A0..BF (shorter forms would be overlong)
const ED_2ND = 5; // after ED: 80..9F (A0..BF would encode a surrogate D800..DFFF)
const NEED3 = 6; // after F1..F3: three continuation bytes
const F0_2ND = 7; // after F0: 90..BF (80..8F would be overlong)
const F4_2ND = 8; // after F4: 80..8F (90..BF would exceed U+10FFFF)
const NSTATES = 9;
const NCLASSES = 12;

const R = REJECT;
// prettier-ignore
const TABLE = new Uint8Array([
  //        0       1       2       3   4      5       6      7      8       9      10     11
  /*ACC */  ACCEPT, R,      R,      R,  R, NEED1, E0_2ND, NEED2, ED_2ND, F0_2ND, NEED3, F4_2ND,
  /*REJ */  R,      R,      R,      R,  R,     R,      R,     R,      R,      R,     R,     R,
  /*N1  */  R,      ACCEPT, ACCEPT, ACCEPT, R, R,      R,     R,      R,      R,     R,     R,
  /*N2  */  R,      NEED1,  NEED1,  NEED1,  R, R,      R,     R,      R,      R,     R,     R,
  /*E0  */  R,      R,      R,      NEED1,  R, R,      R,     R,      R,      R,     R,     R,
  /*ED  */  R,      NEED1,  NEED1,  R,      R, R,      R,     R,      R,      R,     R,     R,
  /*N3  */  R,      NEED2,  NEED2,  NEED2,  R, R,      R,     R,      R,      R,     R,     R,
  /*F0  */  R,      R,      NEED2,  NEED2,  R, R,      R,     R,      R,      R,     R,     R,
  /*F4  */  R,      NEED2,  R,      R,      R, R,      R,     R,      R,      R,     R,     R,
]);
if (TABLE.length !== NSTATES * NCLASSES) throw new Error('utf8: bad DFA table');

/** Below this many bytes the JS loop beats the native call overhead. */
const NATIVE_MIN = 128;

/** Length of the sequence a lead byte starts (1 for ASCII and stray bytes). */
function seqLength(b: number): number {
  return b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
}

export class Utf8Validator {
  private state = ACCEPT;

  /**
   * Feed bytes [start, end) of `buf`. Returns false as soon as the input can
   * never become valid UTF-8 (and keeps returning false until `reset`).
   */
  update(buf: Buffer, start = 0, end = buf.length): boolean {
    let state = this.state;
    if (state === REJECT) return false;
    let i = start;
    // Finish a code point left open by the previous chunk.
    while (state !== ACCEPT && i < end) {
      state = TABLE[state * NCLASSES + CLASS[buf[i++]]];
      if (state === REJECT) {
        this.state = REJECT;
        return false;
      }
    }
    if (end - i >= NATIVE_MIN) {
      // Split off a possibly incomplete code point at the end: walk back over
      // at most 3 continuation bytes to the lead byte.
      let cut = end;
      for (let k = 1; k <= 4 && end - k >= i; k++) {
        const b = buf[end - k];
        if ((b & 0xc0) !== 0x80) {
          if (seqLength(b) > k) cut = end - k;
          break;
        }
      }
      if (!isUtf8(buf.subarray(i, cut))) {
        this.state = REJECT;
        return false;
      }
      i = cut;
    }
    for (; i < end; i++) {
      const b = buf[i];
      // ASCII needs no table lookup between code points.
      if (b < 0x80 && state === ACCEPT) continue;
      state = TABLE[state * NCLASSES + CLASS[b]];
      if (state === REJECT) {
        this.state = REJECT;
        return false;
      }
    }
    this.state = state;
    return true;
  }

  /** True when everything fed so far is valid and no code point is left incomplete. */
  finish(): boolean {
    return this.state === ACCEPT;
  }

  reset(): void {
    this.state = ACCEPT;
  }
}

/** Whole-buffer validation (native simdutf via `buffer.isUtf8`). */
export function isValidUtf8(buf: Buffer): boolean {
  return isUtf8(buf);
}
