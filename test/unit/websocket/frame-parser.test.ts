/**
 * FrameParser: raw bytes in → callbacks / close code out. Every case is fed
 * whole, one byte at a time and in 7-byte chops, and must give the same outcome
 * — also with `maskedBinary` on (binary pieces delivered still masked, unmasked
 * here with `pieceMask`), which must change nothing else.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameParser, type FrameParserOptions } from '../../../src/websocket/frame-parser.js';
import { OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT } from '../../../src/websocket/constants.js';
import { Utf8Validator } from '../../../src/websocket/utf8.js';
import { applyMask } from '../../../src/websocket/mask.js';
import { buildFrame, closePayload, type FrameSpec } from '../../helpers/raw-client.js';

interface Outcome {
  /** Completed messages, each as type + hex of the reassembled bytes. */
  messages: { binary: boolean; data: Buffer; totalLength?: number }[];
  /** Event order: 'msg', 'ping:<hex>', 'pong:<hex>', 'close:<code>', 'error:<code>' */
  events: string[];
  error?: { code: number; reason: string };
  close?: { code: number; reason: string };
  /** Number of onData pieces */
  pieces: number;
  /** bytes delivered of a message still open (fail-fast checks) */
  openBytes: number;
  openData: Buffer;
}

const SERVER: FrameParserOptions = { expectMasked: true, maxFrame: 1 << 20, maxMessage: 1 << 20, maxFragments: 64 };

function run(input: Buffer, chop: number, opts: Partial<FrameParserOptions> = {}, maskedBinary = false): Outcome {
  const out: Outcome = { messages: [], events: [], pieces: 0, openBytes: 0, openData: Buffer.alloc(0) };
  let parts: Buffer[] = [];
  let total: number | undefined;
  let errors = 0;
  const p: FrameParser = new FrameParser({ ...SERVER, ...opts }, {
    onData(data, isBinary, first, fin, totalLength) {
      out.pieces++;
      const mask = p.pieceMask;
      if (mask !== null) {
        assert.ok(maskedBinary && isBinary && (opts.expectMasked ?? true), 'only binary pieces of masked frames stay masked, and only when asked');
        data = Buffer.from(data);
        applyMask(data, mask);
      }
      if (first) {
        assert.equal(parts.length, 0, 'first piece while a message is open');
        total = totalLength;
      } else {
        assert.equal(totalLength, undefined, 'totalLength only on the first piece');
      }
      parts.push(Buffer.from(data));
      out.openBytes += data.length;
      if (fin) {
        out.messages.push({ binary: isBinary, data: Buffer.concat(parts), totalLength: total });
        out.events.push('msg');
        parts = [];
        out.openBytes = 0;
      }
    },
    onPing(payload) { out.events.push(`ping:${payload.toString('hex')}`); },
    onPong(payload) { out.events.push(`pong:${payload.toString('hex')}`); },
    onClose(code, reason) {
      out.close = { code, reason };
      out.events.push(`close:${code}`);
    },
    onError(code, reason) {
      errors++;
      out.error = { code, reason };
      out.events.push(`error:${code}`);
    },
  });
  p.maskedBinary = maskedBinary;
  // The parser unmasks in place: give each run its own copy.
  const bytes = Buffer.from(input);
  for (let i = 0; i < bytes.length; i += chop) p.push(bytes.subarray(i, i + chop));
  assert.ok(errors <= 1, 'onError called more than once');
  out.openData = Buffer.concat(parts);
  return out;
}

/** Run whole, byte-by-byte and 7-byte chops; assert identical outcomes; return the whole-input one. */
function parse(input: Buffer, opts: Partial<FrameParserOptions> = {}): Outcome {
  const whole = run(input, Math.max(1, input.length), opts);
  for (const [chop, maskedBinary] of [[1, false], [7, false], [input.length, true], [1, true], [7, true]] as const) {
    const o = run(input, Math.max(1, chop), opts, maskedBinary);
    assert.deepEqual(o.events, whole.events, `chop ${chop}: events differ`);
    assert.deepEqual(o.messages.map((m) => [m.binary, m.data.toString('hex'), m.totalLength]),
      whole.messages.map((m) => [m.binary, m.data.toString('hex'), m.totalLength]), `chop ${chop}: messages differ`);
    assert.deepEqual(o.error?.code, whole.error?.code, `chop ${chop}: error differs`);
    // On an error the valid prefix delivered so far may be cut differently
    // (pieces follow the chops); without one, everything must match.
    if (whole.error === undefined) assert.equal(o.openBytes, whole.openBytes, `chop ${chop}: open bytes differ`);
    if (o.error?.code === 1007) assert.ok(new Utf8Validator().update(o.openData), 'only a valid UTF-8 prefix was delivered');
  }
  return whole;
}

const f = (spec: FrameSpec): Buffer => buildFrame(spec);
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function expectError(input: Buffer, code: number, opts: Partial<FrameParserOptions> = {}): Outcome {
  const o = parse(input, opts);
  assert.equal(o.error?.code, code, `expected close ${code}, got ${JSON.stringify(o.error)} events ${o.events.join(',')}`);
  return o;
}

describe('FrameParser: valid frames', () => {
  for (const len of [0, 125, 126, 127, 65535, 65536]) {
    for (const enc of ['minimal', '16', '64'] as const) {
      if (enc === '16' && len > 65535) continue;
      it(`${len}-byte binary payload, ${enc} length encoding`, () => {
        const payload = Buffer.alloc(len);
        for (let i = 0; i < len; i++) payload[i] = (i * 31 + 7) & 0xff;
        const input = f({ opcode: OP_BINARY, payload, lengthEncoding: enc });
        // Byte-at-a-time over 64 KiB is slow-ish but fine; only run it once per size.
        const o = len > 1000 ? run(input, Math.max(1, input.length)) : parse(input);
        if (len > 1000) {
          const chopped = run(input, 997);
          assert.ok(chopped.messages[0].data.equals(payload));
        }
        assert.equal(o.error, undefined);
        assert.equal(o.messages.length, 1);
        assert.equal(o.messages[0].binary, true);
        assert.ok(o.messages[0].data.equals(payload));
        assert.equal(o.messages[0].totalLength, len);
      });
    }
  }

  it('65536-byte text frame one byte at a time', () => {
    const payload = Buffer.from('é'.repeat(32768));
    const o = run(f({ opcode: OP_TEXT, payload }), 1);
    assert.equal(o.error, undefined);
    assert.ok(o.messages[0].data.equals(payload));
  });

  it('non-minimal length encodings are accepted (126 carrying 5, 127 carrying 200)', () => {
    const o = parse(cat(
      f({ opcode: OP_TEXT, payload: 'hello', lengthEncoding: '16' }),
      f({ opcode: OP_BINARY, payload: Buffer.alloc(200, 1), lengthEncoding: '64' }),
    ));
    assert.equal(o.error, undefined);
    assert.equal(o.messages[0].data.toString(), 'hello');
    assert.equal(o.messages[1].data.length, 200);
  });

  it('fragmented text with every code point split across fragments', () => {
    const text = Buffer.from('aé€𝄞z');
    const frames = [...text].map((b, i) => f({
      opcode: i === 0 ? OP_TEXT : OP_CONT, payload: Buffer.from([b]), fin: i === text.length - 1,
    }));
    const o = parse(cat(...frames));
    assert.equal(o.error, undefined);
    assert.equal(o.messages.length, 1);
    assert.equal(o.messages[0].data.toString(), 'aé€𝄞z');
    assert.equal(o.messages[0].totalLength, undefined, 'length unknown for fragmented messages');
  });

  it('pings between fragments are delivered before the message completes', () => {
    const o = parse(cat(
      f({ opcode: OP_TEXT, payload: 'frag1', fin: false }),
      f({ opcode: OP_PING, payload: 'p1' }),
      f({ opcode: OP_CONT, payload: 'frag2', fin: false }),
      f({ opcode: OP_PONG, payload: 'p2' }),
      f({ opcode: OP_CONT, payload: 'frag3', fin: true }),
    ));
    assert.equal(o.error, undefined);
    assert.deepEqual(o.events, ['ping:' + Buffer.from('p1').toString('hex'), 'pong:' + Buffer.from('p2').toString('hex'), 'msg']);
    assert.equal(o.messages[0].data.toString(), 'frag1frag2frag3');
  });

  it('empty first and last fragments; empty messages', () => {
    const o = parse(cat(
      f({ opcode: OP_TEXT, payload: '', fin: false }),
      f({ opcode: OP_CONT, payload: 'mid', fin: false }),
      f({ opcode: OP_CONT, payload: '', fin: true }),
      f({ opcode: OP_TEXT, payload: '' }),
      f({ opcode: OP_BINARY, payload: '' }),
    ));
    assert.equal(o.error, undefined);
    assert.deepEqual(o.messages.map((m) => [m.binary, m.data.toString()]), [[false, 'mid'], [false, ''], [true, '']]);
  });

  it('ping with 0 and 125 bytes; unsolicited pong', () => {
    const p125 = Buffer.alloc(125, 0xab);
    const o = parse(cat(f({ opcode: OP_PING }), f({ opcode: OP_PING, payload: p125 }), f({ opcode: OP_PONG, payload: 'x' })));
    assert.deepEqual(o.events, ['ping:', `ping:${p125.toString('hex')}`, 'pong:78']);
  });

  it('client role: unmasked server frames are accepted', () => {
    const o = parse(f({ opcode: OP_TEXT, payload: 'hi', mask: false }), { expectMasked: false });
    assert.equal(o.messages[0].data.toString(), 'hi');
  });

  it('hands payload on zero-copy: delivered data is a view into the input chunk', () => {
    const input = f({ opcode: OP_BINARY, payload: Buffer.alloc(1000, 5) });
    let seen: Buffer | undefined;
    const p = new FrameParser(SERVER, {
      onData(d) { seen = d; }, onPing() {}, onPong() {}, onClose() {}, onError() { assert.fail('error'); },
    });
    p.push(input);
    assert.ok(seen !== undefined);
    assert.equal(seen.buffer, input.buffer, 'same ArrayBuffer');
    assert.ok(seen.equals(Buffer.alloc(1000, 5)));
  });

  it('delivers payload as it arrives, before the frame is complete', () => {
    const input = f({ opcode: OP_BINARY, payload: Buffer.alloc(10000, 9) });
    const got: number[] = [];
    const p = new FrameParser(SERVER, {
      onData(d, _b, first, fin, total) { got.push(d.length); if (first) assert.equal(total, 10000); assert.equal(fin, got.reduce((a, b) => a + b) === 10000); },
      onPing() {}, onPong() {}, onClose() {}, onError() { assert.fail('error'); },
    });
    p.push(input.subarray(0, 5000));
    assert.equal(got.reduce((a, b) => a + b, 0), 5000 - 8);
    p.push(input.subarray(5000));
    assert.equal(got.reduce((a, b) => a + b, 0), 10000);
  });

  it('pause holds the rest of the chunk; resume continues in order', () => {
    const input = cat(f({ opcode: OP_TEXT, payload: 'one' }), f({ opcode: OP_TEXT, payload: 'two' }), f({ opcode: OP_TEXT, payload: 'three' }));
    const got: string[] = [];
    const p: FrameParser = new FrameParser(SERVER, {
      onData(d) { got.push(d.toString()); p.pause(); }, onPing() {}, onPong() {}, onClose() {}, onError() { assert.fail('error'); },
    });
    p.push(input);
    assert.deepEqual(got, ['one']);
    p.push(f({ opcode: OP_TEXT, payload: 'four' }));
    assert.deepEqual(got, ['one']);
    p.resume();
    assert.deepEqual(got, ['one', 'two']);
    p.resume();
    p.resume();
    p.resume();
    assert.deepEqual(got, ['one', 'two', 'three', 'four']);
  });

  it('counts frames and begun messages', () => {
    const p = new FrameParser(SERVER, { onData() {}, onPing() {}, onPong() {}, onClose() {}, onError() {} });
    p.push(cat(f({ opcode: OP_TEXT, payload: 'a', fin: false }), f({ opcode: OP_PING })));
    assert.equal(p.framesIn, 2);
    assert.equal(p.messagesBegun, 1);
    assert.equal(p.messageOpen, true);
    p.push(f({ opcode: OP_CONT, payload: 'b' }));
    assert.equal(p.messageOpen, false);
  });
});

describe('FrameParser: maskedBinary (raw relay path)', () => {
  const bin1 = Buffer.from(Array.from({ length: 37 }, (_, i) => (i * 7 + 3) & 0xff));
  const bin2 = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13 + 1) & 0xff));
  const input = cat(
    f({ opcode: OP_BINARY, payload: bin1 }),
    f({ opcode: OP_TEXT, payload: 'héllo wörld' }),
    f({ opcode: OP_BINARY, payload: bin2.subarray(0, 101), fin: false }),
    f({ opcode: OP_PING, payload: 'p' }),
    f({ opcode: OP_CONT, payload: bin2.subarray(101, 102), fin: false }),
    f({ opcode: OP_CONT, payload: Buffer.alloc(0), fin: false }),
    f({ opcode: OP_CONT, payload: bin2.subarray(102), fin: true }),
  );

  it('binary pieces stay masked in the input chunk, with the right key, split at every byte', () => {
    for (let at = 0; at <= input.length; at++) {
      const bytes = Buffer.from(input);
      const got: { binary: boolean; data: Buffer }[] = [];
      let msg: Buffer[] = [];
      let maskedPieces = 0;
      const p: FrameParser = new FrameParser(SERVER, {
        onData(data, isBinary, _first, fin) {
          const mask = p.pieceMask;
          assert.equal(mask !== null, isBinary, 'binary pieces masked, text plain');
          const copy = Buffer.from(data);
          if (mask !== null && data.length > 0) {
            maskedPieces++;
            assert.equal(data.buffer, bytes.buffer, 'still a view into the input: no copy');
            applyMask(copy, mask);
          }
          msg.push(copy);
          if (fin) {
            got.push({ binary: isBinary, data: Buffer.concat(msg) });
            msg = [];
          }
        },
        onPing() {}, onPong() {}, onClose() {}, onError(code, reason) { assert.fail(`error ${code} ${reason}`); },
      });
      p.maskedBinary = true;
      p.push(bytes.subarray(0, at));
      p.push(bytes.subarray(at));
      assert.deepEqual(got.map((m) => [m.binary, m.data.toString('hex')]),
        [[true, bin1.toString('hex')], [false, Buffer.from('héllo wörld').toString('hex')], [true, bin2.toString('hex')]], `split at ${at}`);
      assert.ok(maskedPieces >= 4, `split at ${at}: binary payload was left masked`);
    }
  });

  it('text is still unmasked and UTF-8 checked fail-fast; limits and masking rules still apply', () => {
    const bad = cat(f({ opcode: OP_TEXT, payload: hex('cebae1'), fin: false }), f({ opcode: OP_CONT, payload: hex('f4908080'), fin: false }));
    for (const chop of [1, 3, bad.length]) assert.equal(run(bad, chop, {}, true).error?.code, 1007);
    assert.equal(run(f({ opcode: OP_BINARY, payload: Buffer.alloc(10) }), 1, { maxFrame: 9, maxMessage: 9 }, true).error?.code, 1009);
    assert.equal(run(f({ opcode: OP_BINARY, payload: 'x', mask: false }), 1, {}, true).error?.code, 1002);
    assert.equal(run(cat(Buffer.from([0xc2, 0x81, 1, 2, 3, 4]), Buffer.from('x')), 1, {}, true).error?.code, 1002, 'RSV1');
  });

  it('client role (unmasked frames): nothing to leave masked, pieceMask stays null', () => {
    const o = run(f({ opcode: OP_BINARY, payload: bin1, mask: false }), 5, { expectMasked: false }, true);
    assert.equal(o.messages[0].data.toString('hex'), bin1.toString('hex'));
  });
});

describe('FrameParser: masking (RFC 6455 §5.1) → 1002', () => {
  it('unmasked client frame in server role', () => {
    expectError(f({ opcode: OP_TEXT, payload: 'hi', mask: false }), 1002);
  });
  it('unmasked frame after a valid one: the first message is still delivered', () => {
    const o = expectError(cat(f({ opcode: OP_TEXT, payload: 'ok' }), f({ opcode: OP_TEXT, payload: 'no', mask: false })), 1002);
    assert.equal(o.messages.length, 1);
  });
  it('unmasked ping in server role', () => {
    expectError(f({ opcode: OP_PING, mask: false }), 1002);
  });
  it('masked server frame in client role', () => {
    expectError(f({ opcode: OP_TEXT, payload: 'hi' }), 1002, { expectMasked: false });
  });
});

describe('FrameParser: reserved bits (RFC 6455 §5.2) → 1002', () => {
  for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
    for (const opcode of [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE]) {
      it(`RSV=${rsv} on opcode ${opcode}, after a valid message, then a ping`, () => {
        const o = expectError(cat(
          f({ opcode: OP_TEXT, payload: 'fine' }),
          f({ opcode, rsv, payload: opcode === OP_CLOSE ? closePayload(1000) : 'x' }),
          f({ opcode: OP_PING, payload: 'after' }),
        ), 1002);
        assert.deepEqual(o.events, ['msg', 'error:1002'], 'earlier message delivered, nothing after (no ping)');
      });
    }
  }
  it('RSV1 on a continuation frame even when RSV1 is allowed', () => {
    expectError(cat(f({ opcode: OP_TEXT, payload: 'a', fin: false }), f({ opcode: OP_CONT, rsv: 4, payload: 'b' })), 1002, { allowRsv1: true });
  });
  it('RSV1 on a ping even when RSV1 is allowed', () => {
    expectError(f({ opcode: OP_PING, rsv: 4 }), 1002, { allowRsv1: true });
  });
});

describe('FrameParser: reserved opcodes (RFC 6455 §5.2) → 1002', () => {
  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    it(`opcode ${opcode} with and without payload`, () => {
      expectError(f({ opcode }), 1002);
      const o = expectError(cat(f({ opcode: OP_TEXT, payload: 'ok' }), f({ opcode, payload: 'data' }), f({ opcode: OP_PING })), 1002);
      assert.deepEqual(o.events, ['msg', 'error:1002']);
    });
  }
  it('reserved opcode declaring a huge length fails on the opcode, not by allocating', () => {
    expectError(f({ opcode: 5, declaredLength: 2 ** 40 }).subarray(0, 14), 1002);
  });
});

describe('FrameParser: control frames (RFC 6455 §5.4, §5.5) → 1002', () => {
  it('ping with a 126-byte payload', () => {
    expectError(f({ opcode: OP_PING, payload: Buffer.alloc(126) }), 1002);
  });
  it('close with a 126-byte payload (124-byte reason)', () => {
    expectError(f({ opcode: OP_CLOSE, payload: closePayload(1000, 'r'.repeat(124)) }), 1002);
  });
  it('ping with 16-bit length encoding of 5 (> 125 form is never allowed)', () => {
    expectError(f({ opcode: OP_PING, payload: 'hello', lengthEncoding: '16' }), 1002);
  });
  it('fragmented ping (FIN=0) then continuation', () => {
    expectError(cat(f({ opcode: OP_PING, payload: 'a', fin: false }), f({ opcode: OP_CONT, payload: 'b' })), 1002);
  });
  it('fragmented pong', () => {
    expectError(f({ opcode: OP_PONG, payload: 'a', fin: false }), 1002);
  });
  it('fragmented close', () => {
    expectError(f({ opcode: OP_CLOSE, payload: closePayload(1000), fin: false }), 1002);
  });
});

describe('FrameParser: continuation sequencing (RFC 6455 §5.4) → 1002', () => {
  it('orphan continuation, FIN=1', () => {
    expectError(f({ opcode: OP_CONT, payload: 'x' }), 1002);
  });
  it('orphan continuation, FIN=0', () => {
    expectError(f({ opcode: OP_CONT, payload: 'x', fin: false }), 1002);
  });
  it('orphan continuation after a complete message', () => {
    const o = expectError(cat(f({ opcode: OP_TEXT, payload: 'a' }), f({ opcode: OP_CONT, payload: 'b' })), 1002);
    assert.equal(o.messages.length, 1);
  });
  it('new text frame while a fragmented message is open', () => {
    expectError(cat(f({ opcode: OP_TEXT, payload: 'a', fin: false }), f({ opcode: OP_TEXT, payload: 'b' })), 1002);
  });
  it('binary frame inside a fragmented text message', () => {
    expectError(cat(f({ opcode: OP_TEXT, payload: 'a', fin: false }), f({ opcode: OP_BINARY, payload: 'b' })), 1002);
  });
});

describe('FrameParser: length (RFC 6455 §5.2) and limits (1009)', () => {
  it('64-bit length with the most significant bit set → 1002', () => {
    expectError(f({ opcode: OP_BINARY, declaredLength: 0, lengthHigh: 0x80000000 }), 1002);
  });
  it('frame over maxFrame → 1009 from the header alone (no payload sent)', () => {
    const o = expectError(f({ opcode: OP_BINARY, declaredLength: 1001 }).subarray(0, 8), 1009, { maxFrame: 1000 });
    assert.equal(o.pieces, 0);
  });
  it('64-bit length 2^53 → 1009 from the header', () => {
    expectError(f({ opcode: OP_BINARY, declaredLength: 0, lengthHigh: 0x200000 }), 1009);
  });
  it('frame exactly maxFrame is accepted', () => {
    const o = parse(f({ opcode: OP_BINARY, payload: Buffer.alloc(1000) }), { maxFrame: 1000, maxMessage: 1000 });
    assert.equal(o.error, undefined);
  });
  it('message over maxMessage → 1009 at the header of the fragment that passes it', () => {
    const input = cat(
      f({ opcode: OP_BINARY, payload: Buffer.alloc(600), fin: false }),
      f({ opcode: OP_CONT, declaredLength: 600 }).subarray(0, 8), // header only
    );
    const o = expectError(input, 1009, { maxFrame: 1000, maxMessage: 1000 });
    assert.equal(o.openBytes, 600);
  });
  it('a fragmented message exactly maxMessage passes; one byte more → 1009 at the header of the last fragment', () => {
    const fragments = (last: number): Buffer => cat(
      f({ opcode: OP_BINARY, payload: Buffer.alloc(400), fin: false }),
      f({ opcode: OP_CONT, payload: Buffer.alloc(400), fin: false }),
      f({ opcode: OP_CONT, payload: Buffer.alloc(last), fin: true }),
    );
    const exact = parse(fragments(200), { maxFrame: 1000, maxMessage: 1000 });
    assert.equal(exact.error, undefined, 'a message of exactly maxMessage bytes in three fragments');
    assert.equal(exact.messages[0]?.data.length, 1000);
    const over = expectError(fragments(201), 1009, { maxFrame: 1000, maxMessage: 1000 });
    assert.equal(over.openBytes, 800, 'refused at the header of the fragment that passes the limit, before its payload');
  });
  it('single frame over maxMessage (below maxFrame) → 1009', () => {
    expectError(f({ opcode: OP_TEXT, declaredLength: 2000 }).subarray(0, 8), 1009, { maxFrame: 5000, maxMessage: 1000 });
  });
  it('fragments over maxFragments → 1009, empty fragments counted', () => {
    const frames = [f({ opcode: OP_TEXT, payload: '', fin: false })];
    for (let i = 0; i < 4; i++) frames.push(f({ opcode: OP_CONT, payload: '', fin: false }));
    expectError(cat(...frames), 1009, { maxFragments: 4 });
  });
  it('exactly maxFragments fragments is accepted', () => {
    const frames = [f({ opcode: OP_TEXT, payload: 'a', fin: false })];
    for (let i = 0; i < 2; i++) frames.push(f({ opcode: OP_CONT, payload: '', fin: false }));
    frames.push(f({ opcode: OP_CONT, payload: 'b', fin: true }));
    const o = parse(cat(...frames), { maxFragments: 4 });
    assert.equal(o.error, undefined);
    assert.equal(o.messages[0].data.toString(), 'ab');
  });
  it('control frames between fragments do not count as fragments', () => {
    const frames = [f({ opcode: OP_TEXT, payload: 'a', fin: false })];
    for (let i = 0; i < 10; i++) frames.push(f({ opcode: OP_PING }));
    frames.push(f({ opcode: OP_CONT, payload: 'b' }));
    assert.equal(parse(cat(...frames), { maxFragments: 2 }).error, undefined);
  });
});

// Representative UTF-8 table (Markus Kuhn stress test / Autobahn 6.x).
const VALID_UTF8: [string, string][] = [
  ['U+007F', '7f'], ['U+0080', 'c280'], ['U+07FF', 'dfbf'], ['U+0800', 'e0a080'], ['U+FFFF', 'efbfbf'],
  ['U+10000', 'f0908080'], ['U+10FFFF', 'f48fbfbf'], ['U+FFFE', 'efbfbe'], ['BOM', 'efbbbf'], ['NUL', '00'],
  ['U+D7FF', 'ed9fbf'], ['U+E000', 'ee8080'], ['κόσμε', 'cebae1bdb9cf83cebcceb5'],
];
const INVALID_UTF8: [string, string][] = [
  ['overlong C0 AF', 'c0af'], ['surrogate ED A0 80', 'eda080'], ['> U+10FFFF F4 90 80 80', 'f4908080'],
  ['5-byte F8 88 80 80 80', 'f888808080'], ['lone continuation 80', '80'], ['truncated E2 82 at end', 'e282'],
  ['FE', 'fe'], ['FF', 'ff'], ['overlong E0 80 AF', 'e080af'], ['overlong F0 80 80 AF', 'f08080af'], ['C1 BF', 'c1bf'],
  ['surrogate ED BF BF', 'edbfbf'], ['F5', 'f5808080'], ['valid then bad', '48656c6c6fc0'],
];

describe('FrameParser: UTF-8 (RFC 6455 §8.1) → 1007', () => {
  for (const [name, h] of VALID_UTF8) {
    it(`valid ${name} passes byte-identical (single frame and byte-per-fragment)`, () => {
      const bytes = hex(h);
      const o = parse(f({ opcode: OP_TEXT, payload: bytes }));
      assert.equal(o.error, undefined);
      assert.ok(o.messages[0].data.equals(bytes));
      const frags = [...bytes].map((b, i) => f({ opcode: i === 0 ? OP_TEXT : OP_CONT, payload: Buffer.from([b]), fin: i === bytes.length - 1 }));
      const o2 = parse(cat(...frags));
      assert.equal(o2.error, undefined);
      assert.ok(o2.messages[0].data.equals(bytes));
    });
  }
  for (const [name, h] of INVALID_UTF8) {
    it(`invalid ${name} → 1007, message not delivered`, () => {
      const o = expectError(f({ opcode: OP_TEXT, payload: hex(h) }), 1007);
      assert.equal(o.messages.length, 0);
    });
  }

  it('fail-fast: invalid bytes in a middle fragment fail before the final fragment arrives', () => {
    const input = cat(
      f({ opcode: OP_TEXT, payload: hex('cebae1bdb9cf83cebcceb5'), fin: false }),
      f({ opcode: OP_CONT, payload: hex('f4908080'), fin: false }),
    );
    const o = expectError(input, 1007);
    assert.equal(o.openBytes, 11, 'the valid first fragment was delivered, the invalid one not');
  });

  it('fail-fast: invalid chop of a single frame fails before the frame is complete', () => {
    const payload = cat(hex('cebae1bdb9cf83cebcceb5'), hex('f4908080'), Buffer.from('edited'));
    const whole = f({ opcode: OP_TEXT, payload });
    // Header (6 bytes) + valid part + F4 90: the frame is far from complete.
    const partial = whole.subarray(0, 6 + 11 + 2);
    const o = expectError(partial, 1007);
    assert.equal(o.messages.length, 0);
  });

  it('fail-fast: invalid byte in the first fragment fails at once', () => {
    expectError(f({ opcode: OP_TEXT, payload: hex('c0'), fin: false }), 1007);
  });

  it('a sequence truncated at a fragment boundary is fine mid-message, fails at message end', () => {
    const open = parse(f({ opcode: OP_TEXT, payload: hex('41e282'), fin: false }));
    assert.equal(open.error, undefined);
    const o = expectError(cat(
      f({ opcode: OP_TEXT, payload: hex('41e282'), fin: false }),
      f({ opcode: OP_CONT, payload: '', fin: true }),
    ), 1007);
    assert.equal(o.messages.length, 0);
  });

  it('binary messages are not UTF-8 checked', () => {
    assert.equal(parse(f({ opcode: OP_BINARY, payload: hex('c0afff') })).error, undefined);
  });

  it('long text (native fast path) with an invalid byte near the end → 1007', () => {
    const payload = Buffer.concat([Buffer.from('a'.repeat(5000)), hex('eda080'), Buffer.from('b'.repeat(100))]);
    expectError(f({ opcode: OP_TEXT, payload }), 1007);
  });

  it('long text with multi-byte code points split at every chop passes', () => {
    const payload = Buffer.from('€𝄞é'.repeat(500));
    assert.ok(parse(f({ opcode: OP_TEXT, payload })).messages[0].data.equals(payload));
  });
});

describe('FrameParser: close frames (RFC 6455 §5.5.1, §7.4)', () => {
  it('empty close → onClose(1005)', () => {
    const o = parse(f({ opcode: OP_CLOSE }));
    assert.deepEqual(o.close, { code: 1005, reason: '' });
  });
  it('1-byte close payload → 1002', () => {
    expectError(f({ opcode: OP_CLOSE, payload: Buffer.from([0x03]) }), 1002);
    // 0x0C read as the high byte of a code would be 3072, a valid one: only the length rule refuses it.
    const o = expectError(f({ opcode: OP_CLOSE, payload: Buffer.from([0x0c]) }), 1002);
    assert.match(o.error?.reason ?? '', /1-byte/, 'refused for its length, not for its code');
  });
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`invalid close code ${code} → 1002`, () => {
      expectError(f({ opcode: OP_CLOSE, payload: closePayload(code) }), 1002);
    });
  }
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`valid close code ${code}`, () => {
      const o = parse(f({ opcode: OP_CLOSE, payload: closePayload(code, 'bye') }));
      assert.deepEqual(o.close, { code, reason: 'bye' });
    });
  }
  it('123-byte reason is accepted', () => {
    const o = parse(f({ opcode: OP_CLOSE, payload: closePayload(1000, 'é'.repeat(61) + 'x') }));
    assert.equal(o.close?.reason, 'é'.repeat(61) + 'x');
  });
  it('invalid UTF-8 in the reason → 1007', () => {
    expectError(f({ opcode: OP_CLOSE, payload: closePayload(1000, cat(Buffer.from('ab'), hex('eda080'))) }), 1007);
  });
  it('everything after a Close is ignored (data, ping, second close)', () => {
    const o = parse(cat(
      f({ opcode: OP_CLOSE, payload: closePayload(1000) }),
      f({ opcode: OP_TEXT, payload: 'late' }),
      f({ opcode: OP_PING }),
      f({ opcode: OP_CLOSE, payload: closePayload(1001) }),
      f({ opcode: OP_TEXT, payload: 'bad', mask: false }),
    ));
    assert.deepEqual(o.events, ['close:1000']);
  });
  it('close in the middle of a fragmented message', () => {
    const o = parse(cat(f({ opcode: OP_TEXT, payload: 'part', fin: false }), f({ opcode: OP_CLOSE, payload: closePayload(1000) })));
    assert.deepEqual(o.events, ['close:1000']);
  });
});

describe('FrameParser: after an error', () => {
  it('ignores all further input and reports the error once', () => {
    const o = parse(cat(
      f({ opcode: OP_TEXT, payload: 'x', mask: false }),
      f({ opcode: OP_TEXT, payload: 'y' }),
      f({ opcode: 4 }),
    ));
    assert.deepEqual(o.events, ['error:1002']);
  });
});
