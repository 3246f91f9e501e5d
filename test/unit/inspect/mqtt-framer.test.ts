/**
 * The MQTT framer and decoders against an independent encoder (mqtt-packet,
 * the codec of mqtt.js and Aedes): random splits of valid streams give the
 * same packets and the same forwarded bytes; random bytes never throw
 * anything but a typed refusal, and never make the framer keep more than its
 * limits allow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { MqttStreamError, protocolError } from '../../../src/inspect/mqtt/errors.js';
import { DROP, PacketFramer, PASS, type Decision } from '../../../src/inspect/mqtt/framer.js';
import { readConnect, readPublishHead, readSubscribe, readUnsubscribe } from '../../../src/inspect/mqtt/packets.js';

type Level = 4 | 5;
const LIMITS = { count: 32, bytes: 8192 };

function encode(packet: object, level: Level): Buffer {
  return mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion: level });
}

/** Valid packets of the kinds a client sends, as mqtt-packet writes them. */
function clientPacket(level: Level): fc.Arbitrary<object> {
  const topic = fc.stringMatching(/^[a-z0-9$]{1,6}(\/[a-z0-9]{0,6}){0,4}$/);
  const payload = fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a));
  const id = fc.integer({ min: 1, max: 65_535 });
  const props5 = level === 5 ? fc.constant({ properties: { userProperties: { k: 'v' } } }) : fc.constant({});
  return fc.oneof(
    fc.record({ topic, payload, qos: fc.constantFrom(0, 1, 2), retain: fc.boolean(), messageId: id })
      .chain((p) => props5.map((x) => ({ cmd: 'publish', dup: false, ...p, ...(p.qos === 0 ? { messageId: undefined } : {}), ...x }))),
    fc.record({ messageId: id, subscriptions: fc.array(fc.record({ topic, qos: fc.constantFrom(0, 1, 2) }), { minLength: 1, maxLength: 5 }) })
      .map((p) => ({ cmd: 'subscribe', ...p })),
    fc.record({ messageId: id, unsubscriptions: fc.array(topic, { minLength: 1, maxLength: 5 }) }).map((p) => ({ cmd: 'unsubscribe', ...p })),
    fc.constant({ cmd: 'pingreq' }),
    fc.record({ messageId: id }).map((p) => ({ cmd: 'puback', ...p })),
    fc.record({ clientId: fc.string({ minLength: 1, maxLength: 20 }), keepalive: fc.integer({ min: 0, max: 65_535 }), clean: fc.boolean(),
      username: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }) })
      .map((p) => ({ cmd: 'connect', protocolVersion: level, protocolId: 'MQTT', ...p, ...(p.username === undefined ? {} : { password: Buffer.from('pw') }) })),
  );
}

/** Cut `data` at the given fractions into pieces (some empty). */
function split(data: Buffer, cuts: number[]): Buffer[] {
  const points = cuts.map((c) => Math.floor(c * data.length)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let last = 0;
  for (const p of points) { pieces.push(data.subarray(last, p)); last = p; }
  pieces.push(data.subarray(last));
  return pieces;
}

interface Seen { type: number; remaining: number; head: Buffer }

function run(pieces: Buffer[], want: (type: number, remaining: number) => number, decide: (s: Seen) => Decision, maxPacket = 1 << 20): { seen: Seen[]; out: Buffer } {
  const seen: Seen[] = [];
  const framer = new PacketFramer({
    want: (type, _flags, remaining) => want(type, remaining),
    decide(type, _flags, remaining, head) {
      const s = { type, remaining, head: Buffer.from(head) };
      seen.push(s);
      return decide(s);
    },
  }, maxPacket);
  const out: Buffer[] = [];
  for (const p of pieces) framer.feed(p, out);
  assert.ok(framer.atBoundary, 'a stream of whole packets ends at a boundary');
  return { seen, out: Buffer.concat(out) };
}

describe('MQTT framer: random splits of valid streams', () => {
  for (const level of [4, 5] as const) {
    it(`level ${level}: same packets and same bytes however the stream is cut`, () => {
      fc.assert(fc.property(
        fc.array(clientPacket(level), { minLength: 1, maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
        (packets, cuts) => {
          const encoded = packets.map((p) => encode(p, level));
          assert.ok(encoded.every((e) => e.length > 0), 'mqtt-packet wrote every packet');
          const stream = Buffer.concat(encoded);
          const whole = run(split(stream, cuts), (_t, r) => r, () => PASS);
          assert.deepEqual(whole.out, stream, 'everything passed is forwarded unchanged');
          assert.deepEqual(whole.seen.map((s) => s.head), encoded, 'each packet seen whole');
          // Heads only (7 body bytes at most), and every other packet dropped.
          let n = 0;
          const partial = run(split(stream, cuts), (_t, r) => Math.min(r, 7), () => (n++ % 2 === 0 ? PASS : DROP));
          assert.deepEqual(partial.out, Buffer.concat(encoded.filter((_, i) => i % 2 === 0)), 'dropped packets vanish whole');
          assert.deepEqual(partial.seen.map((s) => s.type), encoded.map((e) => e[0] >> 4));
        },
      ), { numRuns: 300 });
    });

    it(`level ${level}: the decoders read what mqtt-packet wrote`, () => {
      fc.assert(fc.property(clientPacket(level), (p) => {
        const bytes = encode(p, level);
        const { seen } = run([bytes], (_t, r) => r, () => PASS);
        const body = bytes.length - seen[0].remaining;
        const packet = p as Record<string, any>;
        switch (packet.cmd) {
          case 'publish': {
            const head = readPublishHead(bytes, body, packet.qos, level, LIMITS);
            assert.equal(head.topic.toString(), packet.topic);
            assert.equal(head.packetId, packet.qos > 0 ? packet.messageId : 0);
            break;
          }
          case 'subscribe': {
            const s = readSubscribe(bytes, body, level, LIMITS, 32);
            assert.deepEqual(s.entries.map((e) => [e.filter, e.options & 3]), packet.subscriptions.map((x: any) => [x.topic, x.qos]));
            break;
          }
          case 'unsubscribe':
            assert.deepEqual(readUnsubscribe(bytes, body, level, LIMITS, 32).filters, packet.unsubscriptions);
            break;
          case 'connect': {
            const c = readConnect(bytes, body, LIMITS);
            assert.equal(c.level, level);
            assert.equal(c.clientId, packet.clientId);
            assert.equal(c.username, packet.username);
            break;
          }
        }
      }), { numRuns: 300 });
    });
  }
});

describe('MQTT framer: refusals', () => {
  /** The refusal of `bytes`, fed whole and one byte at a time (both must agree). */
  const refusal = (bytes: number[], maxPacket = 1 << 20): MqttStreamError => {
    const errors = [[Buffer.from(bytes)], bytes.map((b) => Buffer.from([b]))].map((pieces) => {
      try {
        run(pieces, (_t, r) => r, () => PASS, maxPacket);
      } catch (err) { return err; }
      return undefined;
    });
    for (const e of errors) assert.ok(e instanceof MqttStreamError, `refused with a typed error, got ${String(e)}`);
    const [whole, bytewise] = errors as MqttStreamError[];
    assert.equal(bytewise.reason, whole.reason, 'same refusal however the bytes arrive');
    return whole;
  };

  it('refuses a Remaining Length of five bytes', () => {
    assert.equal(refusal([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).closeCode, 1002);
  });
  it('refuses a Remaining Length that is not minimal', () => {
    assert.equal(refusal([0x30, 0x80, 0x00]).reason, 'mqtt_malformed');
    assert.equal(refusal([0xc0, 0x80, 0x80, 0x00]).reason, 'mqtt_malformed');
  });
  it('refuses a packet over the limit from its fixed header, before its body arrives', () => {
    const e = refusal([0x30, 0xff, 0xff, 0xff, 0x7f]);
    assert.equal(e.reason, 'mqtt_packet_too_large');
    assert.equal(e.closeCode, 1009);
    assert.equal(refusal([0x82, 0x81, 0x01], 128).reason, 'mqtt_packet_too_large', '129 bytes over a limit of 128');
  });
  it('what passed before a refused packet is forwarded, however the bytes were cut', () => {
    const passed = Buffer.concat([encode({ cmd: 'pingreq' }, 4),
      encode({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4)]);
    const subscribe = encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 0 }] }, 4);
    // A packet the framer refuses (reserved type 0), and one its owner refuses.
    for (const refused of [Buffer.from([0x00, 0x00]), subscribe]) {
      const stream = Buffer.concat([passed, refused]);
      for (const pieces of [[stream], [passed, refused], [...stream].map((b) => Buffer.from([b]))]) {
        const out: Buffer[] = [];
        const framer = new PacketFramer({
          want: (_t, _f, r) => r,
          decide(type) { if (type === 8) throw protocolError('mqtt_test', 'refused by the owner'); return PASS; },
        }, 1 << 20);
        assert.throws(() => { for (const p of pieces) framer.feed(p, out); }, MqttStreamError);
        assert.deepEqual(Buffer.concat(out), passed, `the passed packets forwarded, in ${pieces.length} piece(s), before ${refused[0]}`);
      }
    }
  });
  it('refuses reserved types, wrong flags and QoS 3', () => {
    assert.equal(refusal([0x00, 0x00]).reason, 'mqtt_malformed');
    assert.equal(refusal([0x80, 0x00]).reason, 'mqtt_malformed', 'SUBSCRIBE needs flags 0010');
    assert.equal(refusal([0x36, 0x00]).reason, 'mqtt_malformed', 'QoS 3');
    assert.equal(refusal([0xc1, 0x00]).reason, 'mqtt_malformed', 'PINGREQ with flags');
  });
});

describe('MQTT framer and decoders: random bytes', () => {
  it('never throw anything but a typed refusal, and keep at most the wanted head', () => {
    const HEAD_CAP = 300;
    const MAX = 4096;
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 6000 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }),
      fc.constantFrom(4, 5),
      (bytes, cuts, level) => {
        const data = Buffer.from(bytes);
        const framer = new PacketFramer({
          want: (_t, _f, remaining) => Math.min(remaining, HEAD_CAP),
          decide(type, flags, remaining, head, fixedLength) {
            assert.ok(remaining <= MAX, 'no packet over the limit is decided');
            assert.ok(head.length <= 5 + HEAD_CAP, 'the head kept is bounded');
            if (head.length === fixedLength + remaining) {
              if (type === 1) readConnect(head, fixedLength, LIMITS);
              if (type === 8) readSubscribe(head, fixedLength, level, LIMITS, 32);
              if (type === 10) readUnsubscribe(head, fixedLength, level, LIMITS, 32);
            }
            if (type === 3) readPublishHead(head, fixedLength, (flags >> 1) & 3, level, LIMITS);
            return PASS;
          },
        }, MAX);
        const out: Buffer[] = [];
        try {
          for (const p of split(data, cuts)) framer.feed(p, out);
        } catch (err) {
          if (!(err instanceof MqttStreamError)) throw err;
        }
      },
    ), { numRuns: 2000 });
  });
});
