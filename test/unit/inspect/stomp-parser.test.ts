/**
 * StompParser and writeFrame: the grammar of STOMP 1.0/1.1/1.2 frames, the
 * limits, and the same outcome whatever the split. Every case is fed whole,
 * one byte per push and in 5-byte chops (splits.property.test.ts does random splits).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StompParser, type StompLimits } from '../../../src/inspect/stomp/parser.js';
import { CLIENT_COMMANDS, SERVER_COMMANDS, type StompError, type StompFrame, type StompVersion } from '../../../src/inspect/stomp/frame.js';
import { writeFrame } from '../../../src/inspect/stomp/writer.js';

const LIMITS: StompLimits = { maxFrame: 4096, maxHeaderLine: 256, maxHeaders: 8, maxBody: 2048 };

interface Outcome {
  frames: Array<{ command: string; headers: string[]; body: string; raw: string; binary: boolean }>;
  heartbeats: number;
  error?: { kind: string; reason: string };
  /** Most bytes the parser held between pushes. */
  maxBuffered: number;
}

function parse(input: Buffer | string, chop: number, opts: { version?: StompVersion; limits?: Partial<StompLimits>; server?: boolean; binary?: boolean } = {}): Outcome {
  const out: Outcome = { frames: [], heartbeats: 0, maxBuffered: 0 };
  const parser = new StompParser({
    onFrame(f: StompFrame) {
      out.frames.push({ command: f.command, headers: [...f.headers], body: f.body.toString('latin1'), raw: f.raw.toString('latin1'), binary: f.binary });
    },
    onHeartbeat() { out.heartbeats++; },
  }, opts.server ? SERVER_COMMANDS : CLIENT_COMMANDS, { ...LIMITS, ...opts.limits }, opts.version ?? '1.2');
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  let err: StompError | null = null;
  for (let i = 0; i < bytes.length; i += chop) {
    err = parser.push(bytes.subarray(i, i + chop), opts.binary ?? false);
    out.maxBuffered = Math.max(out.maxBuffered, parser.buffered);
  }
  if (err) out.error = { kind: err.kind, reason: err.reason };
  return out;
}

/** The outcome, asserted equal for whole input, byte-by-byte and 5-byte chops (heart-beats aside: they depend on the split). */
function parseAll(input: Buffer | string, opts: Parameters<typeof parse>[2] = {}): Outcome {
  const whole = parse(input, Number.MAX_SAFE_INTEGER, opts);
  for (const chop of [1, 5]) {
    const split = parse(input, chop, opts);
    assert.deepEqual(split.frames, whole.frames, `frames with ${chop}-byte pushes`);
    assert.deepEqual(split.error, whole.error, `error with ${chop}-byte pushes`);
  }
  return whole;
}

describe('STOMP parser: grammar', () => {
  it('parses a frame: command, headers in order, body, the raw bytes', () => {
    const text = 'SEND\ndestination:/queue/a\nx:1\n\nhello\0';
    const o = parseAll(text);
    assert.deepEqual(o.frames, [{ command: 'SEND', headers: ['destination', '/queue/a', 'x', '1'], body: 'hello', raw: text, binary: false }]);
    assert.equal(o.error, undefined);
  });

  it('hands a frame that arrives whole over as a view of the input (no copy)', () => {
    const input = Buffer.from('SEND\ndestination:/q\n\nhi\0');
    let frame: StompFrame | undefined;
    const p = new StompParser({ onFrame(f) { frame = f; }, onHeartbeat() {} }, CLIENT_COMMANDS, LIMITS, '1.2');
    p.push(input, false);
    assert.ok(frame);
    assert.equal(frame.raw.buffer, input.buffer, 'raw shares the input memory');
    assert.equal(frame.raw.byteOffset, input.byteOffset);
    assert.equal(p.buffered, 0);
  });

  it('many frames in one push, EOLs after each NUL, and heart-beats on their own', () => {
    const o = parseAll('\nSEND\ndestination:/a\n\n1\0\n\r\n\nSEND\ndestination:/b\n\n2\0\n');
    assert.deepEqual(o.frames.map((f) => [f.command, f.body]), [['SEND', '1'], ['SEND', '2']]);
    assert.equal(o.heartbeats, 0, 'EOLs that come with frames are not heart-beats');
    assert.equal(parse('\n', 1).heartbeats, 1);
    assert.equal(parse('\r\n', 2).heartbeats, 1);
    assert.equal(parse('\r\n', 1).heartbeats, 2, 'CR then LF in two pushes: two pushes of EOL bytes');
    assert.deepEqual(parse('\r\r\n', 3).error, { kind: 'malformed', reason: 'stomp_syntax' });
  });

  it('content-length bodies may hold NUL; without it the body ends at the first NUL', () => {
    const o = parseAll('SEND\ndestination:/a\ncontent-length:5\n\na\0b\0c\0SEND\ndestination:/b\n\nx\0');
    assert.deepEqual(o.frames.map((f) => f.body), ['a\0b\0c', 'x']);
    const zero = parseAll('SEND\ndestination:/a\ncontent-length:0\n\n\0');
    assert.deepEqual(zero.frames.map((f) => f.body), ['']);
  });

  it('content-length that does not end at a NUL, repeated, or not decimal is malformed', () => {
    assert.deepEqual(parseAll('SEND\ncontent-length:2\n\nabc\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
    assert.deepEqual(parseAll('SEND\ncontent-length:1\ncontent-length:1\n\na\0').error, { kind: 'malformed', reason: 'stomp_bad_content_length' });
    for (const v of ['-1', '1e3', ' 1', '0x10', '', '9999999999999999']) {
      assert.deepEqual(parseAll(`SEND\ncontent-length:${v}\n\na\0`).error, { kind: 'malformed', reason: 'stomp_bad_content_length' }, v);
    }
  });

  it('CR LF ends lines; a CR anywhere else in the head, or a NUL there, is refused', () => {
    const o = parseAll('SEND\r\ndestination:/a\r\n\r\nbody\r\n\0');
    assert.deepEqual(o.frames.map((f) => [f.headers, f.body]), [[['destination', '/a'], 'body\r\n']]);
    assert.deepEqual(parseAll('SEND\ndestination:/a\rb\n\n\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
    assert.deepEqual(parseAll('SEND\r\r\n\n\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
    assert.deepEqual(parseAll('SEND\ndestination:/a\0\n\n\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
  });

  it('repeated headers are kept in order; the first one wins', () => {
    let frame: StompFrame | undefined;
    const p = new StompParser({ onFrame(f) { frame = f; }, onHeartbeat() {} }, CLIENT_COMMANDS, LIMITS, '1.2');
    p.push(Buffer.from('SEND\ndestination:/first\ndestination:/second\n\n\0'), false);
    assert.equal(frame?.header('destination'), '/first');
    assert.equal(frame?.count('destination'), 2);
    assert.equal(frame?.header('absent'), undefined);
  });

  it('header lines without a colon or with an empty name are malformed; colons in values are kept', () => {
    assert.deepEqual(parseAll('SEND\nnocolon\n\n\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
    assert.deepEqual(parseAll('SEND\n:value\n\n\0').error, { kind: 'malformed', reason: 'stomp_syntax' });
    assert.deepEqual(parseAll('SEND\na:b:c\nempty:\n\n\0').frames[0].headers, ['a', 'b:c', 'empty', '']);
  });

  it('commands are checked per direction', () => {
    assert.deepEqual(parseAll('MESSAGE\n\n\0').error, { kind: 'malformed', reason: 'stomp_unknown_command' });
    assert.deepEqual(parseAll('send\n\n\0').error, { kind: 'malformed', reason: 'stomp_unknown_command' });
    assert.deepEqual(parseAll('SEND\n\n\0', { server: true }).error, { kind: 'malformed', reason: 'stomp_unknown_command' });
    assert.equal(parseAll('MESSAGE\n\n\0CONNECTED\n\n\0RECEIPT\n\n\0ERROR\n\n\0', { server: true }).frames.length, 4);
    for (const c of CLIENT_COMMANDS) assert.equal(parseAll(`${c}\n\n\0`).frames[0]?.command, c);
  });

  it('header text from a binary message must be UTF-8 (text messages were checked by the transport)', () => {
    const bad = Buffer.concat([Buffer.from('SEND\nx:'), Buffer.from([0xff]), Buffer.from('\n\n\0')]);
    assert.deepEqual(parseAll(bad, { binary: true }).error, { kind: 'malformed', reason: 'stomp_bad_utf8' });
    const body = Buffer.concat([Buffer.from('SEND\n\n'), Buffer.from([0xff, 0xfe]), Buffer.from('\0')]);
    assert.equal(parseAll(body, { binary: true }).frames[0].binary, true, 'a binary body is fine');
  });

  it('after an error nothing more is parsed', () => {
    const p = new StompParser({ onFrame() { assert.fail('no frame after an error'); }, onHeartbeat() {} }, CLIENT_COMMANDS, LIMITS, '1.2');
    const err = p.push(Buffer.from('BOGUS\n\n\0'), false);
    assert.equal(err?.reason, 'stomp_unknown_command');
    assert.equal(p.push(Buffer.from('SEND\n\n\0'), false), err);
    assert.equal(p.buffered, 0);
  });
});

describe('STOMP parser: escaping per version', () => {
  it('1.2 unescapes \\r \\n \\c \\\\ in names and values', () => {
    const o = parseAll('SEND\na\\cb:x\\r\\n\\c\\\\y\n\n\0');
    assert.deepEqual(o.frames[0].headers, ['a:b', 'x\r\n:\\y']);
  });

  it('1.1 has no \\r; 1.0 has no escaping at all', () => {
    assert.deepEqual(parseAll('SEND\nx:\\n\\c\\\\\n\n\0', { version: '1.1' }).frames[0].headers, ['x', '\n:\\']);
    assert.deepEqual(parseAll('SEND\nx:\\r\n\n\0', { version: '1.1' }).error, { kind: 'malformed', reason: 'stomp_bad_escape' });
    assert.deepEqual(parseAll('SEND\nx:\\r\\t\\c\n\n\0', { version: '1.0' }).frames[0].headers, ['x', '\\r\\t\\c']);
  });

  it('undefined escapes and a trailing backslash are refused', () => {
    for (const v of ['\\t', 'a\\', '\\x41', '\\C']) {
      assert.deepEqual(parseAll(`SEND\nx:${v}\n\n\0`).error, { kind: 'malformed', reason: 'stomp_bad_escape' }, v);
    }
  });

  it('CONNECT, STOMP and CONNECTED are never unescaped', () => {
    assert.deepEqual(parseAll('CONNECT\npasscode:a\\cb\\t\n\n\0').frames[0].headers, ['passcode', 'a\\cb\\t']);
    assert.deepEqual(parseAll('STOMP\nlogin:\\\\\n\n\0').frames[0].headers, ['login', '\\\\']);
    assert.deepEqual(parseAll('CONNECTED\nserver:x\\y\n\n\0', { server: true }).frames[0].headers, ['server', 'x\\y']);
  });
});

describe('STOMP parser: limits', () => {
  const header = (n: number): string => Array.from({ length: n }, (_, i) => `h${i}:v\n`).join('');

  it('frame size: a frame over maxFrame is refused, also before its end arrives', () => {
    const fits = `SEND\n\n${'x'.repeat(LIMITS.maxFrame - 7)}\0`;
    assert.equal(Buffer.byteLength(fits), LIMITS.maxFrame);
    assert.equal(parseAll(fits, { limits: { maxBody: LIMITS.maxFrame } }).frames.length, 1);
    const over = `SEND\n\n${'x'.repeat(LIMITS.maxFrame - 6)}\0`;
    assert.deepEqual(parseAll(over, { limits: { maxBody: LIMITS.maxFrame } }).error, { kind: 'too_large', reason: 'stomp_frame_too_large' });
    // Never terminated: refused once the limit has passed, having held no more than the limit (+1 byte).
    const endless = parse(`SEND\n\n${'x'.repeat(3 * LIMITS.maxFrame)}`, 100, { limits: { maxBody: 1 << 20 } });
    assert.deepEqual(endless.error, { kind: 'too_large', reason: 'stomp_frame_too_large' });
    assert.ok(endless.maxBuffered <= LIMITS.maxFrame + 1, `held ${endless.maxBuffered}`);
  });

  it('body size: by content-length at once, else while reading', () => {
    const declared = parse(`SEND\ncontent-length:${LIMITS.maxBody + 1}\n\n`, 1000);
    assert.deepEqual(declared.error, { kind: 'too_large', reason: 'stomp_body_too_large' }, 'refused before the body arrives');
    assert.deepEqual(parseAll(`SEND\n\n${'b'.repeat(LIMITS.maxBody + 1)}\0`).error, { kind: 'too_large', reason: 'stomp_body_too_large' });
    assert.equal(parseAll(`SEND\n\n${'b'.repeat(LIMITS.maxBody)}\0`).frames.length, 1);
  });

  it('header count', () => {
    assert.equal(parseAll(`SEND\n${header(LIMITS.maxHeaders)}\n\0`).frames.length, 1);
    assert.deepEqual(parseAll(`SEND\n${header(LIMITS.maxHeaders + 1)}\n\0`).error, { kind: 'too_large', reason: 'stomp_too_many_headers' });
  });

  it('header line length, the command line included, also before its EOL arrives', () => {
    const value = (n: number): string => 'v'.repeat(n - 2);
    assert.equal(parseAll(`SEND\nx:${value(LIMITS.maxHeaderLine)}\n\n\0`).frames.length, 1);
    assert.deepEqual(parseAll(`SEND\nx:${value(LIMITS.maxHeaderLine + 1)}\n\n\0`).error, { kind: 'too_large', reason: 'stomp_header_too_long' });
    const endless = parse(`SEND\nx:${'v'.repeat(10_000)}`, 64);
    assert.deepEqual(endless.error, { kind: 'too_large', reason: 'stomp_header_too_long' });
    assert.deepEqual(parse('S'.repeat(1000), 64).error, { kind: 'too_large', reason: 'stomp_header_too_long' });
  });
});

describe('STOMP writer', () => {
  it('writes what the parser reads back, escaping per version', () => {
    const headers = ['destination', '/queue/a:b', 'x\ny', 'back\\slash\r'];
    const bytes = writeFrame('SEND', headers, 'body', '1.2');
    assert.ok(bytes);
    assert.equal(bytes.toString(), 'SEND\ndestination:/queue/a\\cb\nx\\ny:back\\\\slash\\r\n\nbody\0');
    assert.deepEqual(parse(bytes, 3).frames[0].headers, headers);
    assert.deepEqual(parse(writeFrame('SEND', ['x', 'a:b\n'], '', '1.1')!, 1, { version: '1.1' }).frames[0].headers, ['x', 'a:b\n']);
  });

  it('refuses text the frame cannot carry instead of writing it raw', () => {
    assert.equal(writeFrame('CONNECT', ['login', 'alice\npasscode:x'], '', '1.2'), undefined, 'CONNECT is never escaped');
    assert.equal(writeFrame('SEND', ['x', 'a\nb'], '', '1.0'), undefined, '1.0 has no escaping');
    assert.equal(writeFrame('SEND', ['x', 'a\rb'], '', '1.1'), undefined, '1.1 cannot carry CR');
    assert.equal(writeFrame('SEND', ['x', 'a\0b'], '', '1.2'), undefined);
    assert.equal(writeFrame('CONNECT', ['a:b', 'v'], '', '1.2'), undefined, 'a colon in an unescaped name');
    assert.equal(writeFrame('CONNECT', ['login', 'a:b'], '', '1.2')?.toString(), 'CONNECT\nlogin:a:b\n\n\0', 'a colon in an unescaped value is fine');
  });

  it('a body with NUL goes whole when content-length is given', () => {
    const bytes = writeFrame('SEND', ['content-length', '3'], Buffer.from([1, 0, 2]), '1.2')!;
    assert.deepEqual([...parse(bytes, 2).frames[0].body].map((c) => c.charCodeAt(0)), [1, 0, 2]);
  });
});
