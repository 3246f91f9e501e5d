/**
 * Streaming MQTT packet framer for one direction of a connection.
 *
 * It reads each packet's fixed header, refuses a bad one (reserved type,
 * wrong flags, a Remaining Length over four bytes or not minimal, a packet
 * over `maxPacket`) before buffering anything of the body, then asks its
 * owner how many body bytes it needs in one piece to decide (the whole
 * packet for control packets, the topic and properties of a PUBLISH) and
 * hands them over contiguous. The owner passes the packet, drops it, or
 * replaces it with bytes of its own. The rest of a passed body is forwarded
 * as it arrives, never assembled.
 *
 * Passed bytes leave as slices of the input: consecutive passed packets of
 * one input piece go out as one slice, so a message of ten allowed PUBLISH
 * packets is forwarded as the very buffer that came in. Bytes are copied
 * only when a head spans input pieces (into a buffer of the head's size).
 */
import { REQUIRED_FLAGS } from './constants.js';
import { malformed, tooLarge } from './errors.js';

/** Forward the packet unchanged. */
export const PASS = 0;
/** Forward nothing of the packet. */
export const DROP = 1;
/** PASS, DROP, or the bytes to send in the packet's place (only when the owner wanted the whole packet). */
export type Decision = typeof PASS | typeof DROP | Buffer;

export interface PacketOwner {
  /** Body bytes (after the fixed header) needed in one piece before `decide`: 0..remaining. */
  want(type: number, flags: number, remaining: number): number;
  /**
   * Decide on a packet. `head` holds the fixed header (`fixedLength` bytes)
   * and the wanted body bytes; it is valid only during the call.
   * Throws an MqttStreamError to end the stream.
   */
  decide(type: number, flags: number, remaining: number, head: Buffer, fixedLength: number): Decision;
}

const AT_BOUNDARY = 0;
const IN_FIXED = 1;
const IN_HEAD = 2;
const IN_BODY = 3;

export class PacketFramer {
  /** Largest Remaining Length accepted; the owner may change it (e.g. after CONNECT). */
  maxPacket: number;
  private state = AT_BOUNDARY;
  /** Fixed header bytes gathered across pieces (at most 5). */
  private readonly fixed = Buffer.alloc(5);
  private fixedGot = 0;
  /** A head that spans pieces, assembled here. */
  private head: Buffer | undefined;
  private headGot = 0;
  private type = 0;
  private flags = 0;
  private remaining = 0;
  private fixedLength = 0;
  /** Body bytes still to come of the current packet, and whether they are forwarded. */
  private left = 0;
  private passing = false;

  constructor(private readonly owner: PacketOwner, maxPacket: number) {
    this.maxPacket = maxPacket;
  }

  /** true between packets: nothing of a packet has been read and not decided. */
  get atBoundary(): boolean {
    return this.state === AT_BOUNDARY;
  }

  /**
   * Feed one piece of the stream; what is to be forwarded is appended to
   * `out`, also when a packet is refused (a throw): what passed before it.
   */
  feed(chunk: Buffer, out: Buffer[]): void {
    const len = chunk.length;
    let pos = 0;
    /** Start of the slice of `chunk` being passed, or -1. */
    let run = -1;
    try {
      while (pos < len) {
        if (this.state === IN_BODY) {
          const n = Math.min(this.left, len - pos);
          if (this.passing) {
            if (run < 0) run = pos;
          } else if (run >= 0) {
            out.push(chunk.subarray(run, pos));
            run = -1;
          }
          pos += n;
          this.left -= n;
          if (this.left === 0) this.state = AT_BOUNDARY;
          continue;
        }
        if (this.state === AT_BOUNDARY) {
          const whole = this.tryWhole(chunk, pos, len);
          if (whole > 0) {
            // The packet's head is inside this piece: decided on a slice, no copy.
            const decision = this.owner.decide(this.type, this.flags, this.remaining, chunk.subarray(pos, pos + whole), this.fixedLength);
            if (decision === PASS) {
              if (run < 0) run = pos;
            } else {
              if (run >= 0) out.push(chunk.subarray(run, pos));
              run = -1;
              if (decision !== DROP && decision.length > 0) out.push(decision);
            }
            pos += whole;
            this.enterBody(decision === PASS, whole - this.fixedLength);
            continue;
          }
          this.state = IN_FIXED;
        }
        if (run >= 0) {
          out.push(chunk.subarray(run, pos));
          run = -1;
        }
        pos = this.state === IN_FIXED ? this.gatherFixed(chunk, pos, len, out) : this.gatherHead(chunk, pos, len, out);
      }
    } catch (err) {
      // A refused packet: what passed before it still goes, as it would have in a read of its own.
      if (run >= 0) out.push(chunk.subarray(run, pos));
      throw err;
    }
    if (run >= 0) out.push(run === 0 && pos === len ? chunk : chunk.subarray(run, pos));
  }

  /**
   * At a boundary: when the fixed header and the wanted head are both inside
   * `chunk` from `pos`, record the packet and return the head's length
   * (fixed header included); otherwise 0.
   */
  private tryWhole(chunk: Buffer, pos: number, len: number): number {
    const avail = len - pos;
    if (avail < 2) return 0;
    let remaining = 0;
    let multiplier = 1;
    let i = 1;
    while (true) {
      if (i >= avail) return 0;
      if (i > 4) throw malformed('Remaining Length longer than four bytes');
      const b = chunk[pos + i];
      remaining += (b & 0x7f) * multiplier;
      i++;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 2) throw malformed('Remaining Length not minimally encoded');
        break;
      }
      multiplier *= 128;
    }
    this.startPacket(chunk[pos], remaining, i);
    const wanted = this.wanted();
    return i + wanted <= avail ? i + wanted : 0;
  }

  private gatherFixed(chunk: Buffer, pos: number, len: number, out: Buffer[]): number {
    while (pos < len) {
      const b = chunk[pos++];
      this.fixed[this.fixedGot++] = b;
      if (this.fixedGot === 1) continue;
      if ((b & 0x80) !== 0) {
        if (this.fixedGot === 5) throw malformed('Remaining Length longer than four bytes');
        continue;
      }
      if (b === 0 && this.fixedGot > 2) throw malformed('Remaining Length not minimally encoded');
      let remaining = 0;
      for (let k = this.fixedGot - 1; k >= 1; k--) remaining = remaining * 128 + (this.fixed[k] & 0x7f);
      const fixedLength = this.fixedGot;
      this.fixedGot = 0;
      this.startPacket(this.fixed[0], remaining, fixedLength);
      const wanted = this.wanted();
      const head = Buffer.allocUnsafe(this.fixedLength + wanted);
      this.fixed.copy(head, 0, 0, this.fixedLength);
      this.head = head;
      this.headGot = this.fixedLength;
      this.state = IN_HEAD;
      if (this.headGot === head.length) this.decideHead(out);
      return pos;
    }
    return pos;
  }

  private gatherHead(chunk: Buffer, pos: number, len: number, out: Buffer[]): number {
    const head = this.head!;
    const n = Math.min(head.length - this.headGot, len - pos);
    chunk.copy(head, this.headGot, pos, pos + n);
    this.headGot += n;
    if (this.headGot === head.length) this.decideHead(out);
    return pos + n;
  }

  private decideHead(out: Buffer[]): void {
    const head = this.head!;
    this.head = undefined;
    const decision = this.owner.decide(this.type, this.flags, this.remaining, head, this.fixedLength);
    if (decision === PASS) out.push(head);
    else if (decision !== DROP && decision.length > 0) out.push(decision);
    this.enterBody(decision === PASS, head.length - this.fixedLength);
  }

  private enterBody(passing: boolean, headBody: number): void {
    this.left = this.remaining - headBody;
    this.passing = passing;
    this.state = this.left > 0 ? IN_BODY : AT_BOUNDARY;
  }

  /** Validate the first byte and the size, before anything of the body is kept. */
  private startPacket(first: number, remaining: number, fixedLength: number): void {
    const type = first >> 4;
    const flags = first & 0x0f;
    const required = REQUIRED_FLAGS[type];
    if (required === -2) throw malformed('reserved packet type 0');
    if (required >= 0 && flags !== required) throw malformed(`wrong fixed-header flags for packet type ${type}`);
    if (required === -1 && (flags & 0x06) === 0x06) throw malformed('PUBLISH with QoS 3');
    if (remaining > this.maxPacket) throw tooLarge(`packet of ${remaining} bytes over the limit of ${this.maxPacket}`);
    this.type = type;
    this.flags = flags;
    this.remaining = remaining;
    this.fixedLength = fixedLength;
  }

  private wanted(): number {
    const w = this.owner.want(this.type, this.flags, this.remaining);
    return w < 0 ? 0 : w > this.remaining ? this.remaining : w;
  }
}
