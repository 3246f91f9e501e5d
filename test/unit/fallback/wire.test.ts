/** The fallback wire format: server encoder/decoder against the client's, and every malformed input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrames, encodeClose, encodeEmpty, encodeMessage, encodeNumber, FrameType, isSendableCloseCode,
} from '../../../src/fallback/wire.js';
import { FrameReader, numberFrame, closeFrame, frame, readNumber, readClose, writeHeader, HEADER, TEXT, BINARY, SEQ, PING, PONG } from '../../../client/src/wire.js';
import { serializeOrigin } from '../../../src/front/fallback-origin.js';

const limits = { maxMessage: 1024, maxFrames: 100 };

test('server-encoded frames decode in the client, in any chunking', () => {
  const body = Buffer.concat([
    encodeNumber(FrameType.SEQ, 2 ** 40 + 7),
    encodeMessage(Buffer.from('héllo'), false),
    encodeMessage(Buffer.from([0, 255, 10, 13]), true),
    encodeEmpty(FrameType.HEARTBEAT),
    encodeClose(4000, 'bye ✓'),
    encodeEmpty(FrameType.END),
  ]);
  for (const chop of [1, 3, 7, body.length]) {
    const reader = new FrameReader();
    const out = [];
    for (let i = 0; i < body.length; i += chop) out.push(...reader.push(new Uint8Array(body.subarray(i, i + chop)), 1024));
    assert.deepEqual(out.map((f) => f.type), [SEQ, TEXT, BINARY, FrameType.HEARTBEAT, FrameType.CLOSE, FrameType.END]);
    assert.equal(readNumber(out[0].payload), 2 ** 40 + 7);
    assert.equal(new TextDecoder().decode(out[1].payload), 'héllo');
    assert.deepEqual([...out[2].payload], [0, 255, 10, 13]);
    assert.deepEqual(readClose(out[4].payload), { code: 4000, reason: 'bye ✓' });
    assert.equal(reader.pending, 0);
  }
});

test('client-encoded frames decode on the server', () => {
  const body = Buffer.concat([numberFrame(SEQ, 1), frame(TEXT, new TextEncoder().encode('a')), frame(BINARY, new Uint8Array([1])), closeFrame(1000, 'done')]);
  const { frames, error } = decodeFrames(body, limits);
  assert.equal(error, undefined);
  assert.deepEqual(frames.map((f) => f.type), [FrameType.SEQ, FrameType.TEXT, FrameType.BINARY, FrameType.CLOSE]);
  assert.deepEqual(frames[3], { type: FrameType.CLOSE, code: 1000, reason: 'done' });
});

test('probe frames: the client\'s PING decodes on the server, the server\'s PONG in the client; a PING of the wrong length is malformed', () => {
  const { frames, error } = decodeFrames(Buffer.from(numberFrame(PING, 2 ** 33 + 5)), limits);
  assert.equal(error, undefined);
  assert.deepEqual(frames, [{ type: FrameType.PING, value: 2 ** 33 + 5 }]);
  const [pong] = new FrameReader().push(new Uint8Array(encodeNumber(FrameType.PONG, 9)), 64);
  assert.equal(pong.type, PONG);
  assert.equal(readNumber(pong.payload), 9);
  const short = decodeFrames(Buffer.from(frame(PING, new Uint8Array(2))), limits);
  assert.equal(short.error?.reason, 'malformed_frame');
  assert.equal(short.error?.closeCode, 1002);
});

test('frame headers: the client writes and reads every length byte as the server does', () => {
  for (const len of [0, 1, 255, 256, 65_535, 65_536, 2 ** 24 - 1, 2 ** 24 + 3, 2 ** 31 + 5, 2 ** 32 - 1]) {
    const head = new Uint8Array(HEADER);
    writeHeader(head, 0, BINARY, len);
    const server = Buffer.alloc(HEADER);
    server[0] = BINARY;
    server.writeUInt32BE(len, 1);
    assert.deepEqual([...head], [...server], `length ${len}`);
    // The reader takes the length from the header (and refuses it against a small maximum).
    assert.throws(() => new FrameReader().push(head, len - 1), new RegExp(`frame of ${len} bytes`), `length ${len}`);
  }
});

test('malformed bodies: the frames before the error are kept, the error names the WebSocket close code', () => {
  const ok = encodeMessage(Buffer.from('ok'), false);
  const cases: Array<[Buffer, string, number]> = [
    [Buffer.concat([ok, Buffer.from([1, 0, 0])]), 'malformed_frame', 1002],
    [Buffer.concat([ok, Buffer.from([1, 0, 0, 0, 9, 1])]), 'malformed_frame', 1002],
    [Buffer.concat([ok, Buffer.from([0x7f, 0, 0, 0, 0])]), 'malformed_frame', 1002],
    [Buffer.concat([ok, Buffer.from([FrameType.HEARTBEAT, 0, 0, 0, 1, 0])]), 'malformed_frame', 1002],
    [Buffer.concat([ok, Buffer.from([FrameType.ACK, 0, 0, 0, 2, 0, 0])]), 'malformed_frame', 1002],
    [Buffer.concat([ok, Buffer.from([FrameType.TEXT, 0, 0, 0, 2, 0xc0, 0xaf])]), 'invalid_utf8', 1007],
    [Buffer.concat([ok, Buffer.from([FrameType.TEXT, 0, 0, 0, 3, 0xed, 0xa0, 0x80])]), 'invalid_utf8', 1007],
    // Declared over the limit: refused from the header, before the payload is there.
    [Buffer.concat([ok, Buffer.from([FrameType.BINARY, 0xff, 0xff, 0xff, 0xff])]), 'message_too_big', 1009],
    [Buffer.concat([ok, encodeClose(1005, '')]), 'invalid_close', 1002],
    [Buffer.concat([ok, encodeClose(999, '')]), 'invalid_close', 1002],
    [Buffer.concat([ok, Buffer.from([FrameType.CLOSE, 0, 0, 0, 1, 3])]), 'invalid_close', 1002],
    [Buffer.concat([ok, Buffer.from([FrameType.CLOSE, 0, 0, 0, 3, 0x03, 0xe8, 0xff])]), 'invalid_utf8', 1007],
  ];
  for (const [body, reason, code] of cases) {
    const { frames, error } = decodeFrames(body, limits);
    assert.equal(frames.length, 1, reason);
    assert.equal(error?.reason, reason, body.toString('hex'));
    assert.equal(error?.closeCode, code);
  }
  const many = Buffer.concat(Array.from({ length: 101 }, () => encodeEmpty(FrameType.HEARTBEAT)));
  assert.equal(decodeFrames(many, limits).error?.reason, 'too_many_frames');
});

test('exotic but valid text passes byte for byte', () => {
  const text = Buffer.from('\u0000\uFEFF\uFFFF\u{10FFFF}', 'utf8');
  const { frames, error } = decodeFrames(encodeMessage(text, false), limits);
  assert.equal(error, undefined);
  assert.deepEqual((frames[0] as { payload: Buffer }).payload, text);
});

test('close codes that may be sent', () => {
  for (const c of [1000, 1001, 1008, 1011, 1014, 3000, 4999]) assert.ok(isSendableCloseCode(c), String(c));
  for (const c of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.ok(!isSendableCloseCode(c), String(c));
});

test('origins are compared in serialised form; null, lists, paths and userinfo are invalid', () => {
  assert.equal(serializeOrigin(undefined), null);
  assert.equal(serializeOrigin('HTTPS://App.Example.COM:443'), 'https://app.example.com');
  assert.equal(serializeOrigin('http://a.example:8080'), 'http://a.example:8080');
  for (const bad of ['null', 'https://a https://b', 'https://a.example/', 'https://u:p@a.example', 'ftp://a.example', 'a.example', ['https://a', 'https://b']]) {
    assert.equal(serializeOrigin(bad), 'invalid', String(bad));
  }
});
