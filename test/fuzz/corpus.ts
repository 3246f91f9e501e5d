/**
 * What the fuzz runs share: the input generator (arbitrary bytes, biased
 * toward the shapes each parser reads, so that short runs reach past the
 * first check) and the crash directory.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import { buildFrame } from '../helpers/raw-client.js';
import { writeConversation } from './script.js';

const KEY = Buffer.from([1, 2, 3, 4]);

export const CRASH_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'crashes');

/** Bytes that begin like the input each target reads, then anything. */
const SEEDS: Record<string, Uint8Array[]> = {
  'frame-parser': [
    // A chop byte, then a message at the limits' edges: two 150-byte fragments (300 = maxMessage), a ping between.
    Uint8Array.from(Buffer.concat([Buffer.from([0x03]), buildFrame({ opcode: 2, fin: false, payload: Buffer.alloc(150, 7), mask: KEY }),
      buildFrame({ opcode: 9, payload: 'p', mask: KEY }), buildFrame({ opcode: 0, payload: Buffer.alloc(150, 8), mask: KEY })])),
    Uint8Array.from(Buffer.concat([Buffer.from([0x00]), buildFrame({ opcode: 1, fin: false, payload: 'h\u00e9', mask: KEY }),
      buildFrame({ opcode: 0, fin: false, payload: '', mask: KEY }), buildFrame({ opcode: 0, payload: 'llo', mask: KEY })])),
    Uint8Array.from([0x05, 0x81, 0x85, 1, 2, 3, 4, 0x49, 0x67, 0x6f, 0x68, 0x6b]),
    Uint8Array.from([0x01, 0x01, 0x82, 1, 2, 3, 4, 0x80, 0x80, 0x80, 0x80, 0x80]),
    Uint8Array.from([0x07, 0x89, 0x80, 1, 2, 3, 4, 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]),
  ],
  handshake: [
    new TextEncoder().encode('GET /s HTTP/1.1\r\nHost: a.example:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n'
      + 'X-Forwarded-For: 10.0.0.2, 203.0.113.9\r\nForwarded: for="[2001:db8::1]:4711"\r\n\r\n'),
    new TextEncoder().encode('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'),
  ],
  'fallback-wire': [
    Uint8Array.from([0x05, 0, 0, 0, 6, 0, 0, 0, 0, 0, 1, 0x01, 0, 0, 0, 2, 0x68, 0x69, 0x03, 0, 0, 0, 2, 0x03, 0xe8]),
    // A session request's body: the KEY frame (32-byte key), an ACK, a text message.
    Uint8Array.from([0x0a, 0, 0, 0, 32, ...Array.from({ length: 32 }, (_, i) => i * 7 + 1),
      0x06, 0, 0, 0, 6, 0, 0, 0, 0, 0, 3, 0x01, 0, 0, 0, 2, 0x68, 0x69]),
  ],
  // A chop byte, a flags byte (binary client, tcp backend, binary broker), then the conversation.
  stomp: [
    stompSeed(0x03, 0, [
      ['client', 'CONNECT\naccept-version:1.1,1.2\nhost:/\nlogin:mallory\npasscode:pw\nheart-beat:10,0\n\n\0'],
      ['broker', 'CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0\n'],
      ['client', 'SEND\ndestination:/queue/user.alice\ncontent-length:2\nreceipt:r1\n\nhi\0\n\nSUBSCRIBE\nid:1\ndestination:/topic/a.b\n\n\0'],
      ['client', 'SUBSCRIBE\nid:2\ndestination:/queue/user.bob\nreceipt:r2\n\n\0'],
      ['broker', 'MESSAGE\nsubscription:1\nmessage-id:7\ndestination:/topic/a.b\ncontent-length:3\n\nx\0y\0\nRECEIPT\nreceipt-id:r1\n\n\0'],
    ]),
    stompSeed(0x11, 3, [
      ['client', 'STOMP\naccept-version:1.0\n\n\0'],
      ['client', 'BEGIN\ntransaction:t\n\n\0SEND\ndestination:/queue/user.alice\ntransaction:t\n\nbody\0'],
      ['broker', 'CONNECTED\nversion:1.0\n\n\0'],
      ['client', 'UNSUBSCRIBE\nid:1\n\n\0\nSEND\ndestination:/queue/user.alice\ndestination:/queue/x\n\n\0'],
      ['broker', 'ERROR\nmessage:no\n\n\0'],
    ]),
  ],
  // A chop byte, then the conversation; MQTT 3.1.1 and 5.0.
  // A chop byte, then the conversation; MQTT 3.1.1 and 5.0.
  mqtt: [
    ...[4, 5].map((level) => mqttSeed(0x05, level as 4 | 5, wholeSession(level as 4 | 5))),
    mqttSeed(0x03, 4, [['client', [{ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 60, username: 'u',
      password: Buffer.from('p'), will: { topic: 'devices/alice/gone', payload: Buffer.from('bye'), qos: 1, retain: false } },
    { cmd: 'publish', topic: 'devices/alice/t', payload: Buffer.from('22'), qos: 1, messageId: 1, retain: false, dup: false },
    { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'broadcast/+', qos: 2 }, { topic: 'devices/+/t', qos: 0 }] }]]]),
    mqttSeed(0x11, 5, [...opened(5), ['client', [
      { cmd: 'publish', topic: 'devices/alice/a', payload: Buffer.from('1'), qos: 1, messageId: 3, retain: false, dup: false, properties: { topicAlias: 2 } },
      { cmd: 'publish', topic: 'devices/bob/a', payload: Buffer.from('2'), qos: 1, messageId: 4, retain: false, dup: false, properties: { topicAlias: 2 } },
      { cmd: 'publish', topic: '', payload: Buffer.from('3'), qos: 1, messageId: 5, retain: false, dup: false, properties: { topicAlias: 2 } },
      { cmd: 'unsubscribe', messageId: 6, unsubscriptions: ['devices/alice/#'] }, { cmd: 'pingreq' }]]]),
    // Over the bounds (QoS above max_qos, retain, a packet over max_packet): refused, and must stay so.
    mqttSeed(0x00, 4, [...opened(4), ['client', [{ cmd: 'publish', topic: 'devices/alice/q', payload: Buffer.from('2'), qos: 2, messageId: 8, retain: false, dup: false }]]]),
    mqttSeed(0x05, 5, [...opened(5), ['client', [{ cmd: 'publish', topic: 'devices/alice/r', payload: Buffer.from('r'), qos: 1, messageId: 8, retain: true, dup: false }]]]),
    mqttSeed(0x20, 4, [...opened(4), ['client', [{ cmd: 'publish', topic: 'devices/alice/big', payload: Buffer.alloc(2100, 3), qos: 0, retain: false, dup: false }]]]),
    mqttSeed(0x07, 5, [...opened(5), ['broker', [{ cmd: 'suback', messageId: 7, granted: [1] },
      { cmd: 'publish', topic: 'devices/alice/t', payload: Buffer.alloc(100, 2), qos: 1, messageId: 9, retain: false, dup: false }, { cmd: 'pingresp' }]]]),
  ],
};

function stompSeed(chop: number, flags: number, turns: ReadonlyArray<readonly ['client' | 'broker', string]>): Uint8Array {
  return Uint8Array.from(Buffer.concat([Buffer.from([chop, flags]), writeConversation(turns)]));
}

type MqttTurn = readonly ['client' | 'broker', readonly object[]];

/** The MQTT target's input: how to cut, then the conversation, packets as mqtt-packet (mqtt.js's codec) writes them. */
function mqttSeed(chop: number, level: 4 | 5, turns: readonly MqttTurn[]): Uint8Array {
  const gen = (packet: object): Buffer => mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion: level });
  return Uint8Array.from(Buffer.concat([Buffer.from([chop]),
    writeConversation(turns.map(([side, packets]) => [side, Buffer.concat(packets.map(gen))] as const))]));
}

/** An open session: CONNECT, the broker's CONNACK, a SUBSCRIBE the broker still has to answer (one filter refused). */
function opened(level: 4 | 5): MqttTurn[] {
  return [
    ['client', [{ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'bob', clean: true, keepalive: 30 }]],
    ['broker', [{ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false, ...(level === 5 ? { properties: { topicAliasMaximum: 10 } } : {}) }]],
    ['client', [{ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'devices/alice/#', qos: 1 }, { topic: 'devices/+/t', qos: 0 }] }]],
  ];
}

/** A whole session: CONNECT (with a will), CONNACK, subscriptions allowed and refused, PUBLISH both ways (a topic alias in 5.0), DISCONNECT. */
function wholeSession(level: 4 | 5): MqttTurn[] {
  const v5 = level === 5;
  return [
    ['client', [{ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'mine', clean: true, keepalive: 30, username: 'mallory',
      password: Buffer.from('guess'), will: { topic: 'devices/alice/status', payload: Buffer.from('gone'), qos: 1, retain: false },
      ...(v5 ? { properties: { sessionExpiryInterval: 60, userProperties: { role: 'admin' } } } : {}) }]],
    ['broker', [{ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false, ...(v5 ? { properties: { topicAliasMaximum: 10 } } : {}) }]],
    ['client', [{ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'chat/7', qos: 1 }, { topic: 'devices/bob/#', qos: 0 }, { topic: 'broadcast/+', qos: 2 }] }]],
    ['client', [{ cmd: 'publish', topic: 'chat/7', payload: Buffer.from('hello'), qos: 1, messageId: 2, ...(v5 ? { properties: { topicAlias: 1 } } : {}) }]],
    ['client', [{ cmd: 'publish', topic: v5 ? '' : 'chat/7', payload: Buffer.from('again'), qos: 0, ...(v5 ? { properties: { topicAlias: 1 } } : {}) }]],
    ['broker', [{ cmd: 'suback', messageId: 1, granted: [1, 2] }]],
    ['client', [{ cmd: 'publish', topic: 'chat/8', payload: Buffer.from('no'), qos: 1, messageId: 3 }]],
    ['broker', [{ cmd: 'puback', messageId: 2 }, { cmd: 'publish', topic: 'chat/7', payload: Buffer.alloc(300, 1), qos: 0 }]],
    ['client', [{ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['chat/7'] }, { cmd: 'pingreq' }]],
    ['broker', [{ cmd: 'unsuback', messageId: 4, ...(v5 ? { granted: [0] } : {}) }, { cmd: 'pingresp' }]],
    ['client', [{ cmd: 'disconnect' }]],
  ];
}

/** Arbitrary bytes, or a seed of the target with bytes flipped, cut or appended. */
export function inputs(target: string): fc.Arbitrary<Uint8Array> {
  const seeds = SEEDS[target] ?? [];
  const random = fc.uint8Array({ maxLength: 2048 });
  if (seeds.length === 0) return random;
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.nat(), fc.uint8Array({ maxLength: 256 }))
    .map(([seed, flips, cut, tail]) => {
      const out = Uint8Array.from(seed);
      for (const [at, value] of flips) if (out.length > 0) out[at % out.length] = value;
      const kept = out.subarray(0, out.length === 0 ? 0 : cut % (out.length + 1));
      const joined = new Uint8Array(kept.length + tail.length);
      joined.set(kept);
      joined.set(tail, kept.length);
      return joined;
    });
  return fc.oneof({ arbitrary: mutated, weight: 3 }, { arbitrary: random, weight: 1 });
}

/** Kept crash inputs of a target (file contents). */
export function crashInputs(target: string): Array<{ file: string; data: Uint8Array }> {
  let files: string[];
  try { files = readdirSync(CRASH_DIR); } catch { return []; }
  return files.filter((f) => f.startsWith(`${target}-`) && f.endsWith('.bin'))
    .map((file) => ({ file, data: new Uint8Array(readFileSync(join(CRASH_DIR, file))) }));
}
