/**
 * Property tests of the STOMP parser (fast-check):
 * - a stream of valid frames (any headers, escapes, bodies with and without
 *   content-length, EOLs between frames) cut at random points parses to
 *   exactly the frames that were written;
 * - random input, cut at random points, never throws, never makes the parser
 *   hold more than the frame limit, never yields a frame over a limit, and
 *   gives the same frames (and whether it failed) as the same bytes whole;
 * - frames whose headers are not decoded (the broker's, but CONNECTED) end
 *   where decoded ones end and fail for the same reasons.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StompParser, type StompLimits } from '../../../src/inspect/stomp/parser.js';
import { CLIENT_COMMANDS, SERVER_COMMANDS, type StompFrame, type StompVersion } from '../../../src/inspect/stomp/frame.js';
import { writeFrame } from '../../../src/inspect/stomp/writer.js';

const LIMITS: StompLimits = { maxFrame: 2048, maxHeaderLine: 200, maxHeaders: 12, maxBody: 1024 };
const RUNS = Number(process.env.STOMP_RUNS ?? 400);

interface Parsed { frames: Array<{ command: string; headers: string[]; body: number[] }>; failed: boolean; reason?: string; raws: string[]; maxBuffered: number }

interface ParseOptions { version?: StompVersion; commands?: ReadonlySet<string>; decoded?: ReadonlySet<string> }

function parseSplit(bytes: Buffer, cuts: number[], limits = LIMITS, opts: ParseOptions = {}): Parsed {
  const out: Parsed = { frames: [], failed: false, raws: [], maxBuffered: 0 };
  const parser: StompParser = new StompParser({
    onFrame(f: StompFrame) {
      // Read during the push, while the accumulator a frame was completed in is still held.
      out.maxBuffered = Math.max(out.maxBuffered, parser.buffered);
      assert.ok(f.raw.length <= limits.maxFrame, 'frame within maxFrame');
      assert.ok(f.body.length <= limits.maxBody, 'body within maxBody');
      assert.ok(f.headers.length <= 2 * limits.maxHeaders, 'headers within maxHeaders');
      out.frames.push({ command: f.command, headers: [...f.headers], body: [...f.body] });
      out.raws.push(f.raw.toString('hex'));
    },
    onHeartbeat() {},
  }, opts.commands ?? CLIENT_COMMANDS, limits, opts.version ?? '1.2', opts.decoded);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut < from) continue;
    // Binary: header text is then checked for UTF-8 here (a text message's was checked by the transport).
    const err = parser.push(bytes.subarray(from, cut), true);
    out.failed = err !== null;
    out.reason = err?.reason;
    out.maxBuffered = Math.max(out.maxBuffered, parser.buffered);
    from = cut;
  }
  return out;
}

const text = fc.string({ unit: fc.constantFrom('a', 'b', 'Z', '0', ':', '\\', '\n', '\r', ' ', '/', 'é', '€', '𝄞'), maxLength: 12 });
const headerName = text.filter((s) => s.length > 0 && s !== 'content-length');

const frameArb = fc.record({
  command: fc.constantFrom(...CLIENT_COMMANDS),
  headers: fc.array(fc.tuple(headerName, text), { maxLength: 6 }),
  body: fc.uint8Array({ maxLength: 300 }),
  withLength: fc.boolean(),
}).map(({ command, headers, body, withLength }) => {
  const flat = headers.flat();
  const plainBody = withLength ? Buffer.from(body) : Buffer.from(body.map((b) => (b === 0 ? 1 : b)));
  if (withLength) flat.push('content-length', String(plainBody.length));
  return { command, headers: flat, body: plainBody, bytes: writeFrame(command, flat, plainBody, '1.2') };
}).filter((f) => f.bytes !== undefined);

const eols = fc.array(fc.constantFrom('\n', '\r\n'), { maxLength: 3 }).map((a) => Buffer.from(a.join('')));

function cutsFor(length: number) {
  return fc.array(fc.integer({ min: 0, max: length }), { maxLength: 40 }).map((c) => [...new Set(c)].sort((a, b) => a - b));
}

describe('STOMP parser properties', () => {
  it('valid frames split anywhere parse to exactly the frames written', () => {
    const streamArb = fc.array(fc.tuple(eols, frameArb), { minLength: 1, maxLength: 5 }).chain((parts) => {
      const bytes = Buffer.concat(parts.flatMap(([e, f]) => [e, f.bytes!]));
      return fc.tuple(fc.constant(parts.map(([, f]) => f)), fc.constant(bytes), cutsFor(bytes.length));
    });
    fc.assert(fc.property(streamArb, ([frames, bytes, cuts]) => {
      const parsed = parseSplit(bytes, cuts, { ...LIMITS, maxFrame: 1 << 20, maxBody: 1 << 20, maxHeaderLine: 1 << 20 });
      assert.equal(parsed.failed, false);
      assert.deepEqual(parsed.frames, frames.map((f) => ({ command: f.command, headers: f.headers, body: [...f.body] })));
    }), { numRuns: RUNS });
  });

  it('random input never throws, stays within the limits, and parses the same whatever the split', () => {
    // Pieces of STOMP and raw bytes: random enough to break every rule, STOMP-like enough to get past the first line.
    const piece = fc.oneof(
      fc.constantFrom('SEND\n', 'SUBSCRIBE\n', 'CONNECT\n', 'destination:/q\n', 'content-length:3\n', 'content-length:2000\n',
        'x:\\c\\n\\t\n', '\n', '\r\n', '\r', '\0', ':', 'a'.repeat(150)).map((s) => Buffer.from(s)),
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    );
    const inputArb = fc.array(piece, { maxLength: 60 }).map((p) => Buffer.concat(p)).chain((bytes) => fc.tuple(fc.constant(bytes), cutsFor(bytes.length)));
    fc.assert(fc.property(inputArb, ([bytes, cuts]) => {
      const split = parseSplit(bytes, cuts);
      const whole = parseSplit(bytes, []);
      assert.ok(split.maxBuffered <= LIMITS.maxFrame + 1, `held ${split.maxBuffered} bytes`);
      assert.deepEqual(split.frames, whole.frames);
      assert.equal(split.failed, whole.failed);
    }), { numRuns: RUNS });
  });

  it('frames whose headers are not decoded end where decoded ones do and fail for the same reasons', () => {
    // Frame-shaped input: headers with escapes good and bad (also in content-length), UTF-8 good and bad,
    // commands that escape and that never do (CONNECT), and some raw bytes anywhere.
    const raw = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('latin1'));
    const header = fc.oneof(
      fc.constantFrom('content-length:3\n', 'content-length:1\\c\n', 'content-length:0\n', 'a\\cb:x\\\\y\n', 'x:\\t\n', 'x:\\\n',
        'y:\\r\r\n', 'n\\:v\n', 'n:v\\n\\c\n', 'é:€\n', 'b:\xff\n', ':\n', 'c\n'),
      raw,
    );
    const frame = fc.tuple(fc.constantFrom('SEND\n', 'MESSAGE\n', 'ERROR\n', 'CONNECT\n', 'CONNECTED\n', ''), fc.array(header, { maxLength: 4 }),
      fc.constantFrom('\n', '\r\n', ''), fc.constantFrom('abc', '', 'a\0b'), fc.constantFrom('\0', '\0\n', ''), raw)
      .map(([command, headers, eol, body, end, tail]) => command + headers.join('') + eol + body + end + (tail.length < 4 ? '' : tail));
    const inputArb = fc.array(frame, { maxLength: 6 }).map((f) => Buffer.from(f.join(''), 'latin1'))
      .chain((bytes) => fc.tuple(fc.constant(bytes), cutsFor(bytes.length)));
    const commands = new Set([...CLIENT_COMMANDS, ...SERVER_COMMANDS]);
    fc.assert(fc.property(inputArb, fc.constantFrom<StompVersion>('1.0', '1.1', '1.2'), ([bytes, cuts], version) => {
      const decoded = parseSplit(bytes, [], LIMITS, { version, commands });
      const undecoded = parseSplit(bytes, cuts, LIMITS, { version, commands, decoded: new Set() });
      assert.deepEqual(undecoded.raws, decoded.raws, 'the same frames');
      assert.equal(undecoded.reason, decoded.reason, 'the same error');
      for (const f of undecoded.frames) assert.deepEqual(f.headers, [], 'no headers decoded');
    }), { numRuns: RUNS });
  });

  it('a frame that ends after the limit is refused, and a big push that completes one is not copied whole; at most the frame limit is held', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 700 }), fc.boolean(), (chunk, withLength) => {
      const head = Buffer.from(withLength ? 'SEND\ncontent-length:1000\n\n' : 'SEND\n\n');
      const bytes = Buffer.concat([head, Buffer.alloc(LIMITS.maxFrame * 3, 0x61)]);
      const cuts = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => i * chunk);
      const parsed = parseSplit(bytes, cuts);
      assert.equal(parsed.failed, true);
      assert.ok(parsed.maxBuffered <= LIMITS.maxFrame + 1, `held ${parsed.maxBuffered}`);
      // A frame begun in one push and completed by a push far larger than the limit (which carries more frames).
      const frame = Buffer.from(`SEND\n\n${'b'.repeat(LIMITS.maxBody - 1)}\0`);
      const many = Buffer.concat([frame, ...Array.from({ length: 6 }, () => frame)]);
      const ok = parseSplit(many, [chunk]);
      assert.equal(ok.failed, false);
      assert.equal(ok.frames.length, 7);
      assert.ok(ok.maxBuffered <= LIMITS.maxFrame + 1, `held ${ok.maxBuffered}`);
    }), { numRuns: 50 });
  });
});
