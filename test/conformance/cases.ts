/**
 * The Autobahn|Testsuite fuzzing-client cases of categories 1–7, 9 and 10, as
 * data: what the client puts on the wire and what a conforming server must do.
 *
 * Written from the case definitions of crossbario/autobahn-testsuite
 * (autobahntestsuite/autobahntestsuite/case/*.py at b8a5120): same ids, same
 * bytes, same chopping, same waits, same expected events and close behaviour.
 * Categories 12/13 (permessage-deflate) are in cases-compression.ts and are
 * part of CASES.
 *
 * Payloads are built lazily (`steps()`), because category 9 alone sends
 * ~150 MiB and most runs only need a few cases at a time.
 */

import { COMPRESSION_CASES } from './cases-compression.js';

export const NORMAL = 1000;
export const PROTOCOL_ERROR = 1002;
export const INVALID_PAYLOAD = 1007;

/** Autobahn's result vocabulary. The first three pass. */
export type Verdict =
  | 'OK' | 'NON-STRICT' | 'INFORMATIONAL' | 'UNIMPLEMENTED'
  | 'FAILED' | 'WRONG CODE' | 'UNCLEAN' | 'FAILED BY CLIENT';

export const PASSING: readonly Verdict[] = ['OK', 'NON-STRICT', 'INFORMATIONAL'];

/** One thing the client does, in order. */
export type Step =
  /**
   * Send one frame. `chop`: write its bytes in pieces of this many octets, each
   * its own TCP write (1 = octet-wise). `sync`: write the frame on its own
   * (frame-wise chops). Otherwise consecutive frames leave in one write.
   */
  | { op: 'frame'; opcode: number; payload?: Buffer; fin?: boolean; rsv?: number; chop?: number; sync?: boolean }
  /** Send a message; with `fragmentSize`, split into frames of that many payload bytes (Autobahn's sendMessage). */
  | { op: 'message'; payload: Buffer; binary: boolean; fragmentSize?: number }
  /** Start a frame (header only, FIN clear) whose payload follows in `frameData` steps (Autobahn's beginMessageFrame). */
  | { op: 'beginFrame'; opcode: number; length: number }
  | { op: 'frameData'; data: Buffer }
  /** Start the closing handshake with this Close payload (code + reason, or anything for the bad-close cases). */
  | { op: 'close'; payload: Buffer }
  /**
   * Let `ms` pass (Autobahn's continueLater). Ends early when the connection
   * leaves OPEN (then the rest is not sent) or, with `until: 'pong'`, when a pong
   * arrives. When the connection is still open afterwards, a `timeout` event with
   * `tag` is recorded (the 6.4.x fail-fast cases check for exactly one).
   */
  | { op: 'wait'; ms: number; tag?: string; until?: 'pong' };

/** What the client observed, in order. */
export type Event =
  | { type: 'message'; payload: Buffer; binary: boolean }
  | { type: 'pong'; payload: Buffer }
  | { type: 'ping'; payload: Buffer }
  | { type: 'timeout'; tag: string };

export interface ExpectedClose {
  /** Must the client be the one that sent the first Close? */
  closedByMe: boolean;
  /** Close codes the server may send (none at all is also accepted, as in Autobahn). */
  codes: number[];
  /** Close handshake completed both ways and the server closed TCP. */
  requireClean: boolean;
  /** UTF-8 cases: the server not failing the connection itself means it never noticed. */
  wrongEndpointIsFatal?: boolean;
}

export interface ConformanceCase {
  id: string;
  category: number;
  description: string;
  expectation: string;
  steps: () => Step[];
  /** Event-list expectation: the received events must equal one of these. */
  expected?: { OK?: Event[]; 'NON-STRICT'?: Event[] };
  /** Category 9.1–9.6: one big message must come back, same type, same bytes (`pattern` repeated to `length`). */
  echo?: { binary: boolean; length: number; pattern: Buffer };
  /**
   * Category 9.7/9.8 (and 12/13): `count` messages sent one after another,
   * each after the previous echo. `payload(i)` is the i-th message (default:
   * `length` bytes of 0x2a / 0xfe); `fragmentSize` cuts each (compressed)
   * message into frames of that many bytes.
   */
  roundTrips?: { count: number; length: number; binary: boolean; payload?: (i: number) => Buffer; fragmentSize?: number };
  /** Categories 12/13: the Sec-WebSocket-Extensions offer; messages are compressed both ways as agreed. */
  deflate?: { offer: string };
  close: ExpectedClose;
  /** What the client does once everything is sent, if the case has not ended: drop TCP (killAfter) or send Close (closeAfter). Only failing servers ever reach it. */
  after: { action: 'kill' | 'close'; ms: number };
  /** Do not start the closing handshake when the expected events are complete (the case sends its own Close). */
  suppressClose?: boolean;
  /** Category 7: a wrong close code fails the whole case, not just its close behaviour. */
  wrongCodeFails?: boolean;
  /**
   * Pings of one read may be answered by one pong for the most recent (RFC 6455
   * §5.5.3; the gateway does so, a flood of pings costing one write): pongs
   * that are an in-order subsequence of the OK list ending with its last are NON-STRICT.
   */
  pongsMayCoalesce?: boolean;
  /** Behaviour not defined by the RFC: reported, never failed. */
  informational?: boolean;
  /** Case 10.1.1 checks the client's own framing: text and continuation frame counts. */
  txFrames?: { text: number; continuation: number };
  /** Autobahn reports the duration of these (category 9). */
  reportTime?: boolean;
}

// ---------------------------------------------------------------- helpers

// Defined before any case is built: the 6.6.x verdicts are computed with it at load time.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** RFC 3629 validity of a complete byte string (no trailing partial code point). */
export function isValidUtf8(b: Buffer): boolean {
  try { strictUtf8.decode(b); return true; } catch { return false; }
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
/** `pattern` repeated (and cut) to exactly `length` bytes: Autobahn's payload_len. */
export function repeatTo(pattern: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  if (length === 0) return out;
  out.fill(pattern);
  return out;
}
const closePayload = (code?: number, reason?: Buffer | string): Buffer => {
  const parts: Buffer[] = [];
  if (code !== undefined) { const b = Buffer.alloc(2); b.writeUInt16BE(code); parts.push(b); }
  if (reason !== undefined) parts.push(typeof reason === 'string' ? utf8(reason) : reason);
  return Buffer.concat(parts);
};

const msg = (payload: Buffer | string, binary = false): Event =>
  ({ type: 'message', payload: typeof payload === 'string' ? utf8(payload) : payload, binary });
const pong = (payload: Buffer | string = ''): Event =>
  ({ type: 'pong', payload: typeof payload === 'string' ? utf8(payload) : payload });
const timeout = (tag: string): Event => ({ type: 'timeout', tag });

type FrameStep = Extract<Step, { op: 'frame' }>;
const frame = (opcode: number, payload: Buffer | string = '', extra: Omit<FrameStep, 'op' | 'opcode' | 'payload'> = {}): Step =>
  ({ op: 'frame', opcode, payload: typeof payload === 'string' ? utf8(payload) : payload, ...extra });
const wait = (ms: number, tag?: string, until?: 'pong'): Step => ({ op: 'wait', ms, tag, until });
const close = (code?: number, reason?: Buffer | string): Step => ({ op: 'close', payload: closePayload(code, reason) });

const cleanNormal: ExpectedClose = { closedByMe: true, codes: [NORMAL], requireClean: true };
const failProtocol: ExpectedClose = { closedByMe: false, codes: [PROTOCOL_ERROR], requireClean: false };
const failUtf8: ExpectedClose = { closedByMe: false, codes: [INVALID_PAYLOAD], requireClean: false, wrongEndpointIsFatal: true };

const kill = (s: number): ConformanceCase['after'] => ({ action: 'kill', ms: s * 1000 });
const closeAfter = (s: number): ConformanceCase['after'] => ({ action: 'close', ms: s * 1000 });

type CaseInit = Omit<ConformanceCase, 'category'>;
const cases: ConformanceCase[] = [];
function add(c: CaseInit): void {
  cases.push({ ...c, category: Number(c.id.split('.')[0]) });
}

// ---------------------------------------------------------------- 1 Framing

{
  const lengths = [0, 125, 126, 127, 128, 65535, 65536];
  for (const [group, opcode, kind, fillByte] of [[1, 1, 'text', 0x2a], [2, 2, 'binary', 0xfe]] as const) {
    const binary = opcode === 2;
    lengths.forEach((len, i) => {
      add({
        id: `1.${group}.${i + 1}`,
        description: `Send ${kind} message with payload of length ${len}.`,
        expectation: `Receive echo'ed ${kind} message (with payload as sent). Clean close with normal code.`,
        steps: () => [frame(opcode, Buffer.alloc(len, fillByte))],
        expected: { OK: [msg(Buffer.alloc(len, fillByte), binary)] },
        close: cleanNormal,
        after: kill(len > 128 ? 10 : 1),
      });
    });
    add({
      id: `1.${group}.8`,
      description: `Send ${kind} message with payload of length 65536. Sent out data in chops of 997 octets.`,
      expectation: `Receive echo'ed ${kind} message (with payload as sent). Clean close with normal code.`,
      steps: () => [frame(opcode, Buffer.alloc(65536, fillByte), { chop: 997 })],
      expected: { OK: [msg(Buffer.alloc(65536, fillByte), binary)] },
      close: cleanNormal,
      after: kill(10),
    });
  }
}

// ---------------------------------------------------------------- 2 Pings/Pongs

{
  const pingEcho = (id: string, description: string, payload: Buffer, chop?: number, afterS = 1): void => add({
    id, description,
    expectation: 'Pong with payload echo\'ed is sent in reply to Ping. Clean close with normal code.',
    steps: () => [frame(9, payload, chop ? { chop } : {})],
    expected: { OK: [pong(payload)] },
    close: cleanNormal,
    after: closeAfter(afterS),
  });
  pingEcho('2.1', 'Send ping without payload.', Buffer.alloc(0));
  pingEcho('2.2', 'Send ping with small text payload.', utf8('Hello, world!'));
  pingEcho('2.3', 'Send ping with small binary (non UTF-8) payload.', hex('00fffefdfcfb00ff'));
  pingEcho('2.4', 'Send ping with binary payload of 125 octets.', Buffer.alloc(125, 0xfe));
  add({
    id: '2.5',
    description: 'Send ping with binary payload of 126 octets.',
    expectation: 'Connection is failed immediately (1002/Protocol Error), since control frames are only allowed to have payload up to and including 125 octets.',
    steps: () => [frame(9, Buffer.alloc(126, 0xfe))],
    expected: { OK: [] },
    close: failProtocol,
    after: kill(1),
  });
  pingEcho('2.6', 'Send ping with binary payload of 125 octets, send in octet-wise chops.', Buffer.alloc(125, 0xfe), 1, 2);
  add({
    id: '2.7',
    description: 'Send unsolicited pong without payload. Verify nothing is received. Clean close with normal code.',
    expectation: 'Nothing.',
    steps: () => [frame(10), close(NORMAL)],
    expected: { OK: [] },
    close: cleanNormal,
    after: closeAfter(1),
  });
  add({
    id: '2.8',
    description: 'Send unsolicited pong with payload. Verify nothing is received. Clean close with normal code.',
    expectation: 'Nothing.',
    steps: () => [frame(10, 'unsolicited pong payload'), close(NORMAL)],
    expected: { OK: [] },
    close: cleanNormal,
    after: closeAfter(1),
  });
  add({
    id: '2.9',
    description: 'Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.',
    expectation: 'Nothing in reply to own Pong, but Pong with payload echo\'ed in reply to Ping. Clean close with normal code.',
    steps: () => [frame(10, 'unsolicited pong payload'), frame(9, 'ping payload')],
    expected: { OK: [pong('ping payload')] },
    close: cleanNormal,
    after: closeAfter(1),
  });
  for (const [id, chop] of [['2.10', undefined], ['2.11', 1]] as const) {
    const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
    add({
      id,
      description: `Send 10 Pings with payload.${chop ? ' Send out octets in octet-wise chops.' : ''}`,
      expectation: 'Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. but we check for this behaviour anyway. Clean close with normal code.',
      steps: () => payloads.map((p) => frame(9, p, chop ? { chop } : {})),
      expected: { OK: payloads.map((p) => pong(p)) },
      pongsMayCoalesce: true,
      close: cleanNormal,
      after: closeAfter(3),
    });
  }
}

// ---------------------------------------------------------------- 3 Reserved bits

{
  const hello = 'Hello, world!';
  const rsvExpectation = 'Echo for first message is received, but then connection is failed immediately, since RSV must be 0, when no extension defining RSV meaning has been negotiated. The Pong is not received.';
  add({
    id: '3.1', description: 'Send small text message with RSV = 1.',
    expectation: 'The connection is failed immediately (1002/protocol error), since RSV must be 0, when no extension defining RSV meaning has been negotiated.',
    steps: () => [frame(1, hello, { rsv: 1 })],
    expected: { OK: [] }, close: failProtocol, after: kill(1),
  });
  const three = (id: string, rsv: number, how: string, extra: Omit<FrameStep, 'op' | 'opcode' | 'payload'>): void => add({
    id, description: `Send small text message, then send again with RSV = ${rsv}, then send Ping.${how}`,
    expectation: rsvExpectation,
    steps: () => [frame(1, hello, extra), frame(1, hello, { ...extra, rsv }), frame(9, '', extra)],
    expected: { OK: [msg(hello)], 'NON-STRICT': [] }, close: failProtocol, after: kill(1),
  });
  three('3.2', 2, '', {});
  three('3.3', 3, ' Octets are sent in frame-wise chops.', { sync: true });
  three('3.4', 4, ' Octets are sent in octet-wise chops.', { chop: 1 });
  add({
    id: '3.5', description: 'Send small binary message with RSV = 5.',
    expectation: 'The connection is failed immediately, since RSV must be 0.',
    steps: () => [frame(2, hex('00fffefdfcfb00ff'), { rsv: 5 })],
    expected: { OK: [] }, close: failProtocol, after: kill(1),
  });
  // Autobahn's 3.6 is titled "Ping with RSV = 6" but sends a binary frame; we send what it sends.
  add({
    id: '3.6', description: 'Send Ping with RSV = 6 (as in Autobahn, the frame sent is a binary frame).',
    expectation: 'The connection is failed immediately, since RSV must be 0.',
    steps: () => [frame(2, hello, { rsv: 6 })],
    expected: { OK: [] }, close: failProtocol, after: kill(1),
  });
  add({
    id: '3.7', description: 'Send Close with RSV = 7.',
    expectation: 'The connection is failed immediately, since RSV must be 0.',
    steps: () => [frame(8, '', { rsv: 7 })],
    expected: { OK: [] }, close: failProtocol, after: kill(1),
  });
}

// ---------------------------------------------------------------- 4 Opcodes

{
  const hello = 'Hello, world!';
  for (const [group, kind, base] of [[1, 'non-control', 3], [2, 'control', 11]] as const) {
    const op = (i: number): number => base + i;
    add({
      id: `4.${group}.1`, description: `Send frame with reserved ${kind} Opcode = ${op(0)}.`,
      expectation: 'The connection is failed immediately.',
      steps: () => [frame(op(0))], expected: { OK: [] }, close: failProtocol, after: kill(1),
    });
    add({
      id: `4.${group}.2`, description: `Send frame with reserved ${kind} Opcode = ${op(1)} and non-empty payload.`,
      expectation: 'The connection is failed immediately.',
      steps: () => [frame(op(1), 'reserved opcode payload')], expected: { OK: [] }, close: failProtocol, after: kill(1),
    });
    const tail = (i: number, withPayload: boolean, chop?: number): void => add({
      id: `4.${group}.${i + 1}`,
      description: `Send small text message, then send frame with reserved ${kind} Opcode = ${op(i)}${withPayload ? ' and non-empty payload' : ''}, then send Ping.${chop ? ' Octets are sent in octet-wise chops.' : ''}`,
      expectation: 'Echo for first message is received, but then connection is failed immediately, since reserved opcode frame is used. A Pong is not received.',
      steps: () => {
        const extra = chop ? { chop } : {};
        return [frame(1, hello, extra), frame(op(i), withPayload ? hello : '', extra), frame(9, '', extra)];
      },
      expected: { OK: [msg(hello)], 'NON-STRICT': [] }, close: failProtocol, after: kill(1),
    });
    tail(2, false);
    tail(3, true);
    tail(4, true, 1);
  }
}

// ---------------------------------------------------------------- 5 Fragmentation

{
  const noContinue = 'The connection is failed immediately, since there is no message to continue.';
  const failing = (id: string, description: string, expectation: string, steps: () => Step[], expected: ConformanceCase['expected'] = { OK: [] }): void =>
    add({ id, description, expectation, steps, expected, close: failProtocol, after: kill(1) });
  const echoing = (id: string, description: string, expectation: string, steps: () => Step[], expected: Event[]): void =>
    add({ id, description, expectation, steps, expected: { OK: expected }, close: cleanNormal, after: closeAfter(1) });

  failing('5.1', 'Send Ping fragmented into 2 fragments.', 'Connection is failed immediately, since control message MUST NOT be fragmented.',
    () => [frame(9, 'fragment1', { fin: false }), frame(0, 'fragment2')]);
  failing('5.2', 'Send Pong fragmented into 2 fragments.', 'Connection is failed immediately, since control message MUST NOT be fragmented.',
    () => [frame(10, 'fragment1', { fin: false }), frame(0, 'fragment2')]);
  const two = [frame(1, 'fragment1', { fin: false }), frame(0, 'fragment2')];
  echoing('5.3', 'Send text Message fragmented into 2 fragments.', 'Message is processed and echo\'ed back to us.',
    () => two, [msg('fragment1fragment2')]);
  echoing('5.4', 'Send text Message fragmented into 2 fragments, octets are sent in frame-wise chops.', 'Message is processed and echo\'ed back to us.',
    () => [frame(1, 'fragment1', { fin: false, sync: true }), frame(0, 'fragment2', { sync: true })], [msg('fragment1fragment2')]);
  echoing('5.5', 'Send text Message fragmented into 2 fragments, octets are sent in octet-wise chops.', 'Message is processed and echo\'ed back to us.',
    () => [frame(1, 'fragment1', { fin: false, chop: 1 }), frame(0, 'fragment2', { chop: 1 })], [msg('fragment1fragment2')]);
  const withPing = (extra: Omit<FrameStep, 'op' | 'opcode' | 'payload'>): Step[] =>
    [frame(1, 'fragment1', { ...extra, fin: false }), frame(9, 'ping payload', extra), frame(0, 'fragment2', extra)];
  const pingThenMsg = [pong('ping payload'), msg('fragment1fragment2')];
  echoing('5.6', 'Send text Message fragmented into 2 fragments, one ping with payload in-between.', 'A pong is received, then the message is echo\'ed back to us.',
    () => withPing({}), pingThenMsg);
  echoing('5.7', 'Send text Message fragmented into 2 fragments, one ping with payload in-between. Octets are sent in frame-wise chops.', 'A pong is received, then the message is echo\'ed back to us.',
    () => withPing({ sync: true }), pingThenMsg);
  echoing('5.8', 'Send text Message fragmented into 2 fragments, one ping with payload in-between. Octets are sent in octet-wise chops.', 'A pong is received, then the message is echo\'ed back to us.',
    () => withPing({ chop: 1 }), pingThenMsg);
  const orphan = (fin: boolean, extra: Omit<FrameStep, 'op' | 'opcode' | 'payload'>): Step[] =>
    [frame(0, 'non-continuation payload', { ...extra, fin }), frame(1, 'Hello, world!', extra)];
  failing('5.9', 'Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in one chop.', noContinue, () => orphan(true, {}));
  failing('5.10', 'Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in per-frame chops.', noContinue, () => orphan(true, { sync: true }));
  failing('5.11', 'Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in octet-wise chops.', noContinue, () => orphan(true, { chop: 1 }));
  failing('5.12', 'Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in one chop.', noContinue, () => orphan(false, {}));
  failing('5.13', 'Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in per-frame chops.', noContinue, () => orphan(false, { sync: true }));
  failing('5.14', 'Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in octet-wise chops.', noContinue, () => orphan(false, { chop: 1 }));
  failing('5.15', 'Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where there is nothing to continue, then unfragmented Text Message, all sent in one chop.', noContinue,
    () => [frame(1, 'fragment1', { fin: false }), frame(0, 'fragment2'), frame(0, 'fragment3', { fin: false }), frame(1, 'fragment4')],
    { OK: [msg('fragment1fragment2')], 'NON-STRICT': [] });
  const repeated = (fin: boolean): Step[] => [0, 1].flatMap(() =>
    [frame(0, 'fragment1', { fin }), frame(1, 'fragment2', { fin: false }), frame(0, 'fragment3')]);
  failing('5.16', 'Repeated 2x: Continuation Frame with FIN = false (where there is nothing to continue), then text Message fragmented into 2 fragments.', noContinue, () => repeated(false));
  failing('5.17', 'Repeated 2x: Continuation Frame with FIN = true (where there is nothing to continue), then text Message fragmented into 2 fragments.', noContinue, () => repeated(true));
  failing('5.18', 'Send text Message fragmented into 2 fragments, with both frame opcodes set to text, sent in one chop.',
    'The connection is failed immediately, since all data frames after the initial data frame must have opcode 0.',
    () => [frame(1, 'fragment1', { fin: false }), frame(1, 'fragment2')]);
  for (const [id, sync] of [['5.19', false], ['5.20', true]] as const) {
    const f = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
    add({
      id,
      description: 'A fragmented text message is sent in multiple frames. After sending the first 2 frames of the text message, a Ping is sent. Then we wait 1s (here: until the Pong arrives, at most 1s), then we send 2 more text fragments, another Ping and then the final text fragment. Everything is legal.'
        + (sync ? ' All frames are sent with SYNC = True (frame-wise chops).' : ''),
      expectation: 'The peer immediately answers the first Ping before it has received the last text message fragment. The peer pong\'s back the Ping\'s payload exactly, and echo\'s the payload of the fragmented message back to us.',
      steps: () => [
        frame(1, f[0], { fin: false, sync }), frame(0, f[1], { fin: false, sync }), frame(9, 'pongme 1!', { sync }),
        wait(1000, undefined, 'pong'),
        frame(0, f[2], { fin: false, sync }), frame(0, f[3], { fin: false, sync }), frame(9, 'pongme 2!', { sync }), frame(0, f[4], { sync }),
      ],
      expected: { OK: [pong('pongme 1!'), pong('pongme 2!'), msg(f.join(''))] },
      close: cleanNormal,
      after: closeAfter(1),
    });
  }
}

// ---------------------------------------------------------------- 6 UTF-8 handling

{
  const echoText = (id: string, description: string, steps: () => Step[], payload: Buffer): void => add({
    id, description, expectation: 'A message is echo\'ed back to us.',
    steps, expected: { OK: [msg(payload)] }, close: cleanNormal, after: closeAfter(1),
  });
  echoText('6.1.1', 'Send text message of length 0.', () => [frame(1, '')], Buffer.alloc(0));
  echoText('6.1.2', 'Send fragmented text message, 3 fragments each of length 0.',
    () => [frame(1, '', { fin: false }), frame(0, '', { fin: false }), frame(0, '')], Buffer.alloc(0));
  echoText('6.1.3', 'Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.',
    () => [frame(1, '', { fin: false }), frame(0, 'middle frame payload', { fin: false }), frame(0, '')], utf8('middle frame payload'));

  const hello = utf8('Hello-µ@ßöäüàá-UTF-8!!');
  const kosme = hex('cebae1bdb9cf83cebcceb5');
  echoText('6.2.1', 'Send a valid UTF-8 text message in one fragment.', () => [{ op: 'message', payload: hello, binary: false }], hello);
  const p1 = utf8('Hello-µ@ßöä');
  const p2 = utf8('üàá-UTF-8!!');
  echoText('6.2.2', 'Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary.',
    () => [frame(1, p1, { fin: false }), frame(0, p2)], Buffer.concat([p1, p2]));
  echoText('6.2.3', 'Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.',
    () => [{ op: 'message', payload: hello, binary: false, fragmentSize: 1 }], hello);
  echoText('6.2.4', 'Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.',
    () => [{ op: 'message', payload: kosme, binary: false, fragmentSize: 1 }], kosme);

  const invalid = Buffer.concat([kosme, hex('eda080'), utf8('edited')]);
  add({
    id: '6.3.1', description: `Send invalid UTF-8 text message unfragmented. MESSAGE: ${invalid.toString('hex')}`,
    expectation: 'The connection is failed immediately, since the payload is not valid UTF-8.',
    steps: () => [{ op: 'message', payload: invalid, binary: false }],
    expected: { OK: [] }, close: failUtf8, after: kill(1),
  });
  add({
    id: '6.3.2', description: 'Send invalid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.',
    expectation: 'The connection is failed immediately, since the payload is not valid UTF-8.',
    steps: () => [{ op: 'message', payload: invalid, binary: false, fragmentSize: 1 }],
    expected: { OK: [] }, close: failUtf8, after: kill(1),
  });

  // 6.4.x: fail fast. PART2 makes the text invalid (U+110000 in the 4-byte form);
  // the server must close after PART2 and before PART3 is sent.
  const part1 = kosme;
  const part2 = hex('f4908080');
  const part3 = utf8('edited');
  const whole = Buffer.concat([part1, part2, part3]);
  const failFast = { OK: [timeout('A')], 'NON-STRICT': [timeout('A'), timeout('B')] };
  const failFastExpectation = 'The first part is accepted (we time out on the first wait). The 2nd part should be rejected immediately (fail fast on UTF-8), before the 3rd is sent. If we time out again, the connection must be failed at least then, since the complete message payload is not valid UTF-8.';
  const framesOf = (a: Buffer, b: Buffer, c: Buffer): Step[] => [
    frame(1, a, { fin: false }), wait(1000, 'A'), frame(0, b, { fin: false }), wait(1000, 'B'), frame(0, c),
  ];
  const chopsOf = (a: Buffer, b: Buffer, c: Buffer): Step[] => [
    { op: 'beginFrame', opcode: 1, length: a.length + b.length + c.length },
    { op: 'frameData', data: a }, wait(1000, 'A'), { op: 'frameData', data: b }, wait(1000, 'B'), { op: 'frameData', data: c },
    frame(0, ''),
  ];
  const ff = (id: string, description: string, steps: () => Step[]): void => add({
    id, description, expectation: failFastExpectation, steps, expected: failFast, close: failUtf8, after: kill(1),
  });
  ff('6.4.1', `Send invalid UTF-8 text message in 3 fragments (frames). First frame payload is valid, then wait, then 2nd frame which contains the payload making the sequence invalid, then wait, then 3rd frame with rest. PART1 = ${part1.toString('hex')}, PART2 = ${part2.toString('hex')}, PART3 = ${part3.toString('hex')}`,
    () => framesOf(part1, part2, part3));
  ff('6.4.2', `Same as 6.4.1, but in 2nd frame, we send only up to and including the octet making the complete payload invalid. PART1 = ${whole.subarray(0, 12).toString('hex')}, PART2 = ${whole.subarray(12, 13).toString('hex')}, PART3 = ${whole.subarray(13).toString('hex')}`,
    () => framesOf(whole.subarray(0, 12), whole.subarray(12, 13), whole.subarray(13)));
  ff('6.4.3', 'Same as 6.4.1, but we send message not in 3 frames, but in 3 chops of the same message frame (then an empty final continuation frame).',
    () => chopsOf(part1, part2, part3));
  ff('6.4.4', 'Same as 6.4.2, but we send message not in 3 frames, but in 3 chops of the same message frame (then an empty final continuation frame).',
    () => chopsOf(whole.subarray(0, 12), whole.subarray(12, 13), whole.subarray(13)));

  // 6.5–6.23: Markus Kuhn's UTF-8 decoder stress test, one text message each.
  utf8StressGroups().forEach((group, gi) => {
    group.sequences.forEach(([valid, bytes], si) => {
      add({
        id: `6.${gi + 5}.${si + 1}`,
        description: `${group.name}: send a text message with payload which is ${valid ? '' : 'not '}valid UTF-8 in one fragment. Payload: 0x${bytes.toString('hex')}`,
        expectation: valid ? 'The message is echo\'ed back to us.' : 'The connection is failed immediately, since the payload is not valid UTF-8.',
        steps: () => [{ op: 'message', payload: bytes, binary: false }],
        expected: { OK: valid ? [msg(bytes)] : [] },
        close: valid ? cleanNormal : failUtf8,
        after: kill(0.5),
      });
    });
  });
}

/** The groups of 6.5–6.23, in Autobahn's order; the verdicts are RFC 3629's. */
export function utf8StressGroups(): Array<{ name: string; sequences: Array<[boolean, Buffer]> }> {
  const groups: Array<{ name: string; sequences: Array<[boolean, Buffer]> }> = [];
  const g = (name: string, sequences: Array<[boolean, string | Buffer]>): void => {
    groups.push({ name, sequences: sequences.map(([v, s]) => [v, typeof s === 'string' ? hex(s) : s]) });
  };
  const kosme = 'cebae1bdb9cf83cebcceb5';
  g('Some valid UTF-8 sequences', [
    [true, Buffer.concat([utf8('hello'), hex('24'), utf8('world')])],
    [true, Buffer.concat([utf8('hello'), hex('c2a2'), utf8('world')])],
    [true, Buffer.concat([utf8('hello'), hex('e282ac'), utf8('world')])],
    [true, Buffer.concat([utf8('hello'), hex('f0a4ada2'), utf8('world')])],
    [true, kosme],
  ]);
  // Every prefix of the kosme string: valid only when it ends on a code point boundary.
  const k = hex(kosme);
  g('All prefixes of a valid UTF-8 string that contains multi-byte code points',
    Array.from({ length: k.length }, (_, i) => {
      const prefix = k.subarray(0, i + 1);
      return [isValidUtf8(prefix), Buffer.from(prefix)] as [boolean, Buffer];
    }));
  g('First possible sequence of a certain length', [[true, '00'], [true, 'c280'], [true, 'e0a080'], [true, 'f0908080']]);
  g('First possible sequence length 5/6 (invalid codepoints)', [[false, 'f888808080'], [false, 'fc8480808080']]);
  g('Last possible sequence of a certain length', [[true, '7f'], [true, 'dfbf'], [true, 'efbfbf'], [true, 'f48fbfbf']]);
  g('Last possible sequence length 4/5/6 (invalid codepoints)', [[false, 'f7bfbfbf'], [false, 'fbbfbfbfbf'], [false, 'fdbfbfbfbfbf']]);
  g('Other boundary conditions', [[true, 'ed9fbf'], [true, 'ee8080'], [true, 'efbfbd'], [true, 'f48fbfbf'], [false, 'f4908080']]);
  const range = (from: number, to: number, sep?: number): Buffer =>
    Buffer.from(Array.from({ length: to - from }, (_, i) => (sep === undefined ? [from + i] : [from + i, sep])).flat());
  g('Unexpected continuation bytes', [
    [false, '80'], [false, 'bf'], [false, '80bf'], [false, '80bf80'], [false, '80bf80bf'], [false, '80bf80bf80'], [false, '80bf80bf80bf'],
    [false, range(0x80, 0xbf)],
  ]);
  g('Lonely start characters', [[0xc0, 0xdf], [0xe0, 0xef], [0xf0, 0xf7], [0xf8, 0xfb], [0xfc, 0xfd]]
    .map(([a, b]) => [false, range(a, b, 0x20)] as [boolean, Buffer]));
  const missingLast = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'];
  g('Sequences with last continuation byte missing', missingLast.map((s) => [false, s] as [boolean, string]));
  g('Concatenation of incomplete sequences', [[false, missingLast.join('')]]);
  g('Impossible bytes', [[false, 'fe'], [false, 'ff'], [false, 'fefeffff']]);
  g('Examples of an overlong ASCII character', [[false, 'c0af'], [false, 'e080af'], [false, 'f08080af'], [false, 'f8808080af'], [false, 'fc80808080af']]);
  g('Maximum overlong sequences', [[false, 'c1bf'], [false, 'e09fbf'], [false, 'f08fbfbf'], [false, 'f887bfbfbf'], [false, 'fc83bfbfbfbf']]);
  g('Overlong representation of the NUL character', [[false, 'c080'], [false, 'e08080'], [false, 'f0808080'], [false, 'f880808080'], [false, 'fc8080808080']]);
  g('Single UTF-16 surrogates', ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf'].map((s) => [false, s] as [boolean, string]));
  g('Paired UTF-16 surrogates', ['eda080edb080', 'eda080edbfbf', 'edadbfedb080', 'edadbfedbfbf', 'edae80edb080', 'edae80edbfbf', 'edafbfedb080', 'edafbfedbfbf']
    .map((s) => [false, s] as [boolean, string]));
  // Noncharacters are valid UTF-8 (RFC 3629); F4 9x.. would exceed U+10FFFF and F0 8F.. is overlong.
  const nonchars: Array<[boolean, string]> = [[true, 'efbfbe'], [true, 'efbfbf']];
  for (const z1 of ['f0', 'f1', 'f2', 'f3', 'f4']) {
    for (const z2 of ['8f', '9f', 'af', 'bf']) {
      if (z1 === 'f4' && z2 !== '8f') continue;
      for (const z3 of ['be', 'bf']) {
        const zz = `${z1}${z2}bf${z3}`;
        if (zz !== 'f08fbfbe' && zz !== 'f08fbfbf') nonchars.push([true, zz]);
      }
    }
  }
  g('Non-character code points (valid UTF-8)', nonchars);
  g('Unicode specials (i.e. replacement char)', ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf'].map((s) => [true, s] as [boolean, string]));
  return groups;
}

// ---------------------------------------------------------------- 7 Close handling

{
  const closing = (c: Omit<CaseInit, 'suppressClose' | 'wrongCodeFails' | 'expected'> & { expected?: CaseInit['expected'] }): void =>
    add({ expected: { OK: [] }, suppressClose: true, wrongCodeFails: true, ...c });
  const hw = 'Hello World!';
  add({
    id: '7.1.1', description: 'Send a message followed by a close frame.',
    expectation: 'Echoed message followed by clean close with normal code.',
    steps: () => [frame(1, hw)], expected: { OK: [msg(hw)] }, close: cleanNormal, after: kill(1), wrongCodeFails: true,
  });
  closing({ id: '7.1.2', description: 'Send two close frames.', expectation: 'Clean close with normal code. Second close frame ignored.',
    steps: () => [close(NORMAL), frame(8)], close: cleanNormal, after: kill(1) });
  closing({ id: '7.1.3', description: 'Send a ping after close message.', expectation: 'Clean close with normal code, no pong.',
    steps: () => [close(NORMAL), frame(9)], close: cleanNormal, after: kill(1) });
  closing({ id: '7.1.4', description: 'Send text message after sending a close frame.', expectation: 'Clean close with normal code. Text message ignored.',
    steps: () => [close(NORMAL), frame(1, hw)], close: cleanNormal, after: kill(1) });
  closing({ id: '7.1.5', description: 'Send message fragment1 followed by close then fragment.', expectation: 'Clean close with normal code.',
    steps: () => [frame(1, 'fragment1', { fin: false }), close(NORMAL), frame(0, 'fragment2')], close: cleanNormal, after: kill(1) });
  add({
    id: '7.1.6', description: 'Send 256K message followed by close then a ping.',
    expectation: 'Case outcome depends on implementation defined close behavior. Message and close frame are sent back to back. If the close frame is processed before the text message write is complete (as can happen in asynchronous processing models) the close frame is processed first and the text message may not be received or may only be partially received.',
    steps: () => [frame(1, repeatTo(utf8('BAsd7&jh23'), 256 * 1024)), frame(1, hw), close(NORMAL), frame(9)],
    expected: { OK: [msg(hw)], 'NON-STRICT': [] }, close: cleanNormal, after: kill(1), suppressClose: true, informational: true,
  });
  closing({ id: '7.3.1', description: 'Send a close frame with payload length 0 (no close code, no close reason).', expectation: 'Clean close with normal code.',
    steps: () => [close()], close: cleanNormal, after: kill(1) });
  closing({ id: '7.3.2', description: 'Send a close frame with payload length 1.', expectation: 'Clean close with protocol error or drop TCP.',
    steps: () => [close(undefined, 'a')], close: { closedByMe: true, codes: [PROTOCOL_ERROR], requireClean: false }, after: kill(1) });
  closing({ id: '7.3.3', description: 'Send a close frame with payload length 2 (regular close with a code).', expectation: 'Clean close with normal code.',
    steps: () => [close(NORMAL)], close: cleanNormal, after: kill(1) });
  closing({ id: '7.3.4', description: 'Send a close frame with close code and close reason.', expectation: 'Clean close with normal code.',
    steps: () => [close(NORMAL, hw)], close: cleanNormal, after: kill(1) });
  closing({ id: '7.3.5', description: 'Send a close frame with close code and close reason of maximum length (123).', expectation: 'Clean close with normal code.',
    steps: () => [close(NORMAL, '*'.repeat(123))], close: cleanNormal, after: kill(1) });
  closing({ id: '7.3.6', description: 'Send a close frame with close code and close reason which is too long (124) - total frame payload 126 octets.', expectation: 'Clean close with protocol error code or dropped TCP connection.',
    steps: () => [close(NORMAL, '*'.repeat(124))], close: { closedByMe: true, codes: [PROTOCOL_ERROR], requireClean: false }, after: kill(1) });
  closing({ id: '7.5.1', description: 'Send a close frame with invalid UTF8 payload.', expectation: 'Clean close with protocol error or invalid utf8 code or dropped TCP.',
    steps: () => [close(NORMAL, hex('cebae1bdb9cf83cebcceb5eda080656469746564'))],
    close: { closedByMe: true, codes: [PROTOCOL_ERROR, INVALID_PAYLOAD], requireClean: false }, after: kill(1) });
  [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].forEach((code, i) => add({
    id: `7.7.${i + 1}`, description: `Send close with valid close code ${code}.`, expectation: 'Clean close with normal or echoed code.',
    steps: () => [close(code)], expected: { OK: [] }, close: { closedByMe: true, codes: [NORMAL, code], requireClean: true }, after: kill(1), wrongCodeFails: true,
  }));
  [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999].forEach((code, i) => add({
    id: `7.9.${i + 1}`, description: `Send close with invalid close code ${code}.`, expectation: 'Clean close with protocol error code or drop TCP.',
    steps: () => [close(code)], expected: { OK: [] }, close: { closedByMe: true, codes: [PROTOCOL_ERROR], requireClean: false }, after: kill(1), wrongCodeFails: true,
  }));
  [5000, 65535].forEach((code, i) => add({
    id: `7.13.${i + 1}`, description: `Send close with close code ${code}.`, expectation: 'Actual events are undefined by the spec.',
    steps: () => [close(code)], expected: { OK: [] }, close: { closedByMe: true, codes: [NORMAL, code, PROTOCOL_ERROR], requireClean: false },
    after: kill(1), suppressClose: true, informational: true,
  }));
}

// ---------------------------------------------------------------- 9 Limits/performance

{
  const KiB = 1024;
  const MiB = 1024 * 1024;
  const sizeName = (n: number): string => (n >= MiB ? `${n / MiB}M` : n >= KiB ? `${n / KiB}k` : `${n}`);
  const textPattern = utf8('BAsd7&jh23');
  const binPattern = hex('00fe23faf0');
  const big = (id: string, description: string, binary: boolean, pattern: Buffer, length: number, steps: () => Step[], waitS: number): void => add({
    id, description, expectation: `Receive echo'ed ${binary ? 'binary' : 'text'} message (with payload as sent).`,
    steps, echo: { binary, length, pattern }, close: cleanNormal, after: closeAfter(waitS), reportTime: true,
  });
  [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB].forEach((len, i) => {
    big(`9.1.${i + 1}`, `Send text message with payload of length ${sizeName(len)}.`, false, textPattern, len,
      () => [frame(1, repeatTo(textPattern, len))], len <= 256 * KiB ? 10 : 100);
  });
  [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB].forEach((len, i) => {
    big(`9.2.${i + 1}`, `Send binary message with payload of length ${sizeName(len)}.`, true, binPattern, len,
      () => [frame(2, repeatTo(binPattern, len))], len <= 4 * MiB ? 10 : 100);
  });
  const fragSizes = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
  fragSizes.forEach((fs, i) => {
    big(`9.3.${i + 1}`, `Send fragmented text message with message payload of length 4M. Sent out in fragments of ${sizeName(fs)}.`, false, utf8('*'), 4 * MiB,
      () => [{ op: 'message', payload: Buffer.alloc(4 * MiB, 0x2a), binary: false, fragmentSize: fs }], 100);
  });
  fragSizes.forEach((fs, i) => {
    big(`9.4.${i + 1}`, `Send fragmented binary message with message payload of length 4M. Sent out in fragments of ${sizeName(fs)}.`, true, hex('fe'), 4 * MiB,
      () => [{ op: 'message', payload: Buffer.alloc(4 * MiB, 0xfe), binary: true, fragmentSize: fs }], 100);
  });
  [64, 128, 256, 512, 1024, 2048].forEach((chop, i) => {
    big(`9.5.${i + 1}`, `Send text message with payload of length 1M. Sent out data in chops of ${chop} octets.`, false, textPattern, MiB,
      () => [frame(1, repeatTo(textPattern, MiB), { chop })], 1000);
  });
  [64, 128, 256, 512, 1024, 2048].forEach((chop, i) => {
    big(`9.6.${i + 1}`, `Send binary message with payload of length 1M. Sent out data in chops of ${chop} octets.`, true, binPattern, MiB,
      () => [frame(2, repeatTo(binPattern, MiB), { chop })], 1000);
  });
  const rtt: Array<[number, number]> = [[0, 60], [16, 60], [64, 60], [256, 120], [1024, 240], [4096, 480]];
  for (const binary of [false, true]) {
    rtt.forEach(([length, waitS], i) => add({
      id: `9.${binary ? 8 : 7}.${i + 1}`,
      description: `Send 1000 ${binary ? 'binary' : 'text'} messages of payload size ${length} to measure implementation/network RTT (round trip time) / latency.`,
      expectation: `Receive echo'ed ${binary ? 'binary' : 'text'} messages (with payload as sent). Timeout case after ${waitS} secs.`,
      steps: () => [],
      roundTrips: { count: 1000, length, binary },
      close: cleanNormal, after: closeAfter(waitS), reportTime: true,
    }));
  }
}

// ---------------------------------------------------------------- 10 Misc

add({
  id: '10.1.1',
  description: 'Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.',
  expectation: 'Receive echo\'ed text message (with payload as sent and transmitted frame counts as expected). Clean close with normal code.',
  steps: () => [{ op: 'message', payload: Buffer.alloc(65536, 0x2a), binary: false, fragmentSize: 1300 }],
  expected: { OK: [msg(Buffer.alloc(65536, 0x2a))] },
  close: cleanNormal,
  after: kill(10),
  txFrames: { text: 1, continuation: Math.floor(65536 / 1300) },
});

/** Every case, in Autobahn's order. */
export const CASES: readonly ConformanceCase[] = [...cases, ...COMPRESSION_CASES];

/** Sort key for ids like 6.10.2 (numeric per component). */
export function compareIds(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
