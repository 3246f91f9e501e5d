/**
 * The MQTT inspector's decisions, packet by packet, without sockets: client
 * packets written by mqtt-packet (the codec of mqtt.js), what the session
 * sends each way read back with mqtt-packet's parser. The end-to-end
 * behaviour with mqtt.js, the gateway and Mosquitto is in
 * test/integration/inspect/mqtt.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import type { Principal } from '../../../src/admitted.js';
import { mqttInspectSchema, type MqttInspectConfig } from '../../../src/config/inspect-mqtt.js';
import { MqttSession } from '../../../src/inspect/mqtt/session.js';
import type { MqttIO, MqttRefusal } from '../../../src/inspect/mqtt/state.js';

type Level = 4 | 5;
const alice: Principal = { id: 'alice', roles: [], claims: { room: 'lobby' }, method: 'test' };

interface Ended { code: number; reason: string; lastWords?: Buffer }

class Recorder implements MqttIO {
  backend: Buffer[] = [];
  client: Buffer[] = [];
  refusals: string[] = [];
  ended?: Ended;
  toBackend(pieces: Buffer[]): void { this.backend.push(...pieces); }
  toClient(pieces: Buffer[]): void { this.client.push(...pieces); }
  refused(refusal: MqttRefusal): void { this.refusals.push(refusal.reason); }
  close(code: number, refusal: MqttRefusal, lastWords?: Buffer): void { this.ended = { code, reason: refusal.reason, lastWords }; }
  /** Packets sent toward the broker so far (and forget them). */
  takeBackend(level: Level): mqttPacket.Packet[] { return parseAll(this.backend.splice(0), level); }
  takeClient(level: Level): mqttPacket.Packet[] { return parseAll(this.client.splice(0), level); }
}

function parseAll(pieces: Buffer[], level: Level): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: level });
  const packets: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (e) => { throw e; });
  for (const p of pieces) parser.parse(p);
  return packets;
}

const gen = (packet: object, level: Level): Buffer => mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion: level });

function policy(overrides: Record<string, unknown> = {}): MqttInspectConfig {
  return mqttInspectSchema.parse({
    publish: ['devices/{principal.id}/#', 'chat/{claims.room}'],
    subscribe: ['devices/{principal.id}/#', 'broadcast/+', 'chat/{claims.room}'],
    connect: { client_id: '{principal.id}', username: '{principal.id}', password: 'backend-secret' },
    ...overrides,
  });
}

/** A session past CONNECT (and, for 5.0, the broker's CONNACK with a Topic Alias Maximum of 10). */
function open(level: Level, config = policy(), principal: Principal | undefined = alice): { s: MqttSession; io: Recorder; connack: mqttPacket.IConnackPacket } {
  const io = new Recorder();
  const s = new MqttSession(config, principal, io);
  s.fromClient(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'whatever', clean: true, keepalive: 30,
    username: 'mallory', password: Buffer.from('guess'), ...(level === 5 ? { properties: { userProperties: { role: 'admin' } } } : {}) }, level));
  s.fromBackend(gen({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false, ...(level === 5 ? { properties: { topicAliasMaximum: 10 } } : {}) }, level));
  const [connack] = io.takeClient(level) as mqttPacket.IConnackPacket[];
  if (!io.ended) assert.equal(connack?.cmd, 'connack', 'the broker\'s CONNACK reaches the client');
  return { s, io, connack };
}

describe('MQTT session: CONNECT and identity', () => {
  for (const level of [4, 5] as const) {
    it(`level ${level}: the broker sees the principal's client id and the injected credentials, not the client's`, () => {
      const { io } = open(level);
      const [connect] = io.takeBackend(level) as mqttPacket.IConnectPacket[];
      assert.equal(connect.cmd, 'connect');
      assert.equal(connect.clientId, 'alice', 'client id derived from the principal');
      assert.equal(connect.username, 'alice');
      assert.equal(connect.password?.toString(), 'backend-secret');
      assert.equal(connect.keepalive, 30, 'keep-alive passed on');
      if (level === 5) assert.equal(connect.properties?.userProperties, undefined, 'CONNECT user properties dropped');
      assert.equal(io.ended, undefined);
    });
  }

  it('client_id_prefix keeps the client\'s own id after the principal\'s, and refuses ids containing the separator', () => {
    const config = policy({ connect: { client_id_prefix: '{principal.id}-' } });
    const { io } = open(4, config);
    assert.equal((io.takeBackend(4)[0] as mqttPacket.IConnectPacket).clientId, 'alice-whatever');
    const bad = open(4, config, { ...alice, id: 'alice-x' });
    assert.equal(bad.io.ended?.reason, 'mqtt_client_id');
    assert.equal(bad.io.ended?.code, 1008);
    assert.deepEqual(bad.io.ended?.lastWords, Buffer.from([0x20, 2, 0, 0x02]), 'CONNACK 0x02 identifier rejected');
  });

  it('a packet before CONNECT, a second CONNECT and malformed input end the connection with 1002', () => {
    const io = new Recorder();
    new MqttSession(policy(), alice, io).fromClient(gen({ cmd: 'pingreq' }, 4));
    assert.equal(io.ended?.code, 1002);
    assert.equal(io.ended?.reason, 'mqtt_connect_expected');
    assert.equal(io.backend.length, 0, 'nothing reached the broker');

    const second = open(5);
    second.s.fromClient(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x' }, 5));
    assert.equal(second.io.ended?.reason, 'mqtt_second_connect');
    assert.deepEqual(second.io.ended?.lastWords, Buffer.from([0xe0, 1, 0x82]), 'v5 DISCONNECT 0x82 protocol error first');

    const bad = open(5);
    bad.s.fromClient(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    assert.equal(bad.io.ended?.code, 1002);
    assert.deepEqual(bad.io.ended?.lastWords, Buffer.from([0xe0, 1, 0x81]), 'v5 DISCONNECT 0x81 malformed packet first');
  });

  it('an unsupported protocol level gets CONNACK 0x01', () => {
    const io = new Recorder();
    new MqttSession(policy(), alice, io).fromClient(gen({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'x' }, 4));
    assert.equal(io.ended?.code, 1002);
    assert.deepEqual(io.ended?.lastWords, Buffer.from([0x20, 2, 0, 0x01]));
  });

  it('a will outside the publish policy is refused with CONNACK 0x87 (5.0) / 0x05 (3.1.1)', () => {
    for (const level of [4, 5] as const) {
      const io = new Recorder();
      new MqttSession(policy(), alice, io).fromClient(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'x',
        will: { topic: 'devices/bob/status', payload: Buffer.from('gone'), qos: 0, retain: false, ...(level === 5 ? { properties: {} } : {}) } }, level));
      assert.equal(io.ended?.reason, 'mqtt_will_refused');
      assert.equal(io.ended?.code, 1008);
      const code = io.ended!.lastWords![3];
      assert.equal(code, level === 5 ? 0x87 : 0x05);
      assert.equal(io.backend.length, 0);
    }
  });

  it('enhanced authentication is refused (the gateway authenticates)', () => {
    const io = new Recorder();
    new MqttSession(policy(), alice, io).fromClient(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x',
      properties: { authenticationMethod: 'SCRAM-SHA-1' } }, 5));
    assert.equal(io.ended?.reason, 'mqtt_enhanced_auth');
    assert.equal(io.ended!.lastWords![3], 0x8c);
  });

  it('no CONNECT within the timeout ends the connection with 1008', async () => {
    const io = new Recorder();
    const ended = new Promise<void>((resolve) => { io.close = (code, refusal) => { io.ended = { code, reason: refusal.reason }; resolve(); }; });
    const s = new MqttSession(policy({ limits: { connect_timeout: '50ms' } }), alice, io);
    // The session's timer does not hold the process open (sockets do, in the gateway); this test's does.
    const hold = setTimeout(() => undefined, 10_000);
    await ended;
    clearTimeout(hold);
    assert.equal(io.ended?.reason, 'mqtt_connect_timeout');
    assert.equal(io.ended?.code, 1008);
    s.dispose();
  });
});

describe('MQTT session: PUBLISH', () => {
  it('an allowed PUBLISH passes as the very bytes that came in', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    const bytes = gen({ cmd: 'publish', topic: 'devices/alice/temp', payload: Buffer.alloc(1024, 1), qos: 0, retain: false, dup: false }, 5);
    s.fromClient(bytes);
    s.fromClient(bytes);
    assert.equal(io.backend[0], bytes, 'forwarded without a copy');
    assert.equal(io.backend[1], bytes, 'the cached topic passes too');
  });

  it('a refused QoS 1 / 2 PUBLISH in 5.0 gets PUBACK / PUBREC 0x87 and never reaches the broker', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    s.fromClient(gen({ cmd: 'publish', topic: 'devices/bob/temp', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false }, 5));
    s.fromClient(gen({ cmd: 'publish', topic: 'devices/bob/temp', payload: Buffer.from('x'), qos: 2, messageId: 8, retain: false, dup: false }, 5));
    assert.equal(io.backend.length, 0);
    const answers = io.takeClient(5) as Array<mqttPacket.IPubackPacket | mqttPacket.IPubrecPacket>;
    assert.deepEqual(answers.map((a) => [a.cmd, a.messageId, a.reasonCode]), [['puback', 7, 0x87], ['pubrec', 8, 0x87]]);
    assert.deepEqual(io.refusals, ['mqtt_publish_refused', 'mqtt_publish_refused']);
    assert.equal(io.ended, undefined, 'the connection stays');
  });

  it('a refused PUBLISH in 3.1.1 (and QoS 0 in 5.0) ends the connection with 1008', () => {
    const v3 = open(4);
    v3.s.fromClient(gen({ cmd: 'publish', topic: 'devices/bob/temp', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false }, 4));
    assert.equal(v3.io.ended?.code, 1008);
    assert.equal(v3.io.ended?.reason, 'mqtt_publish_refused');
    assert.equal(v3.io.ended?.lastWords, undefined, '3.1.1 has no DISCONNECT from the server');
    const v5 = open(5);
    v5.s.fromClient(gen({ cmd: 'publish', topic: 'devices/bob/temp', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 5));
    assert.equal(v5.io.ended?.code, 1008);
    assert.deepEqual(v5.io.ended?.lastWords, Buffer.from([0xe0, 1, 0x87]), 'DISCONNECT 0x87 first');
  });

  it('retain and QoS bounds: announced in the CONNACK, a PUBLISH over them is DISCONNECT 0x9A / 0x9B', () => {
    const config = policy({ retain: false, max_qos: 1 });
    const { connack } = open(5, config);
    assert.equal(connack.properties?.maximumQoS, 1);
    assert.equal(connack.properties?.retainAvailable, false);
    for (const [packet, code, reason] of [
      [{ qos: 1, messageId: 1, retain: true }, 0x9a, 'mqtt_retain_refused'],
      [{ qos: 2, messageId: 2, retain: false }, 0x9b, 'mqtt_qos_refused'],
    ] as const) {
      const { s, io } = open(5, config);
      io.takeBackend(5);
      s.fromClient(gen({ cmd: 'publish', topic: 'devices/alice/a', payload: Buffer.from('x'), dup: false, ...packet }, 5));
      assert.equal(io.ended?.reason, reason);
      assert.equal(io.ended?.code, 1008);
      assert.deepEqual(io.ended?.lastWords, Buffer.from([0xe0, 1, code]));
      assert.equal(io.backend.length, 0);
    }
  });

  it('topic aliases: checked against the topic they stand for; rebinding to a refused topic stays refused', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    const pub = (topic: string, alias: number, id: number): void => s.fromClient(gen({ cmd: 'publish', topic, payload: Buffer.from('x'),
      qos: 1, messageId: id, retain: false, dup: false, properties: { topicAlias: alias } }, 5));
    pub('devices/alice/a', 1, 1);
    pub('', 1, 2);
    assert.equal(io.takeBackend(5).length, 2, 'alias set on an allowed topic, then used');
    pub('devices/bob/a', 1, 3);
    pub('', 1, 4);
    assert.equal(io.backend.length, 0, 'neither the rebinding nor its use reached the broker');
    assert.deepEqual((io.takeClient(5) as mqttPacket.IPubackPacket[]).map((a) => [a.messageId, a.reasonCode]), [[3, 0x87], [4, 0x87]]);
    pub('', 2, 5);
    assert.equal(io.ended?.reason, 'mqtt_topic_alias_invalid', 'an alias never set');
  });

  it('an alias over the CONNACK maximum (the broker\'s 10 lowered to the limit) is a protocol error 0x94', () => {
    const { s, io, connack } = open(5, policy({ limits: { topic_aliases: 4 } }));
    assert.equal(connack.properties?.topicAliasMaximum, 4, 'the client is told the lower maximum');
    s.fromClient(gen({ cmd: 'publish', topic: 'devices/alice/a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } }, 5));
    assert.equal(io.ended?.code, 1002);
    assert.deepEqual(io.ended?.lastWords, Buffer.from([0xe0, 1, 0x94]));
  });

  it('a wildcard in a PUBLISH topic is a protocol error', () => {
    const { s, io } = open(4);
    const bytes = gen({ cmd: 'publish', topic: 'devices/alice/x', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4);
    bytes[bytes.indexOf('x', 10)] = '+'.charCodeAt(0);
    s.fromClient(bytes);
    assert.equal(io.ended?.reason, 'mqtt_topic_invalid');
  });
});

describe('MQTT session: SUBSCRIBE', () => {
  for (const level of [4, 5] as const) {
    it(`level ${level}: refused filters get their code in the broker's SUBACK, allowed ones go through`, () => {
      const { s, io } = open(level);
      io.takeBackend(level);
      s.fromClient(gen({ cmd: 'subscribe', messageId: 9, subscriptions: [
        { topic: 'devices/alice/+/temp', qos: 1 }, { topic: 'devices/+/temp', qos: 0 }, { topic: 'broadcast/news', qos: 0 }, { topic: '#', qos: 0 },
      ] }, level));
      const [sub] = io.takeBackend(level) as mqttPacket.ISubscribePacket[];
      assert.deepEqual(sub.subscriptions.map((x) => x.topic), ['devices/alice/+/temp', 'broadcast/news'], 'only allowed filters reach the broker');
      assert.deepEqual(io.refusals, ['mqtt_subscribe_refused', 'mqtt_subscribe_refused']);
      s.fromBackend(gen({ cmd: 'suback', messageId: 9, granted: [1, 0] }, level));
      const [suback] = io.takeClient(level) as mqttPacket.ISubackPacket[];
      const refused = level === 5 ? 0x87 : 0x80;
      assert.deepEqual(suback.granted, [1, refused, 0, refused]);
    });
  }

  it('when every filter is refused the gateway answers alone', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$SYS/#', qos: 0 }, { topic: '$share/g/devices/bob/#', qos: 0 }] }, 5));
    assert.equal(io.backend.length, 0);
    assert.deepEqual((io.takeClient(5)[0] as mqttPacket.ISubackPacket).granted, [0x87, 0x87]);
  });

  it('lowers a requested QoS to max_qos and limits subscriptions per connection', () => {
    const { s, io } = open(5, policy({ max_qos: 0, limits: { subscriptions: 2 } }));
    io.takeBackend(5);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'broadcast/a', qos: 2 }, { topic: 'broadcast/b', qos: 1 }, { topic: 'broadcast/c', qos: 0 }] }, 5));
    const [sub] = io.takeBackend(5) as mqttPacket.ISubscribePacket[];
    assert.deepEqual(sub.subscriptions.map((x) => [x.topic, x.qos]), [['broadcast/a', 0], ['broadcast/b', 0]]);
    s.fromBackend(gen({ cmd: 'suback', messageId: 1, granted: [0, 0] }, 5));
    assert.deepEqual((io.takeClient(5)[0] as mqttPacket.ISubackPacket).granted, [0, 0, 0x97]);
  });

  it('a shared subscription needs a share group of the principal\'s as well as an allowed filter; a value that is no group name joins none', () => {
    const groups = policy({ share_groups: ['{principal.id}', 'team-{claims.room}', '{claims.missing}'] });
    const { s, io } = open(5, groups);
    io.takeBackend(5);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [
      { topic: '$share/alice/broadcast/+', qos: 0 }, { topic: '$share/team-lobby/broadcast/a', qos: 0 }, { topic: '$share/bob/broadcast/+', qos: 0 },
      { topic: '$share/team-other/broadcast/+', qos: 0 }, { topic: '$share/alice/devices/bob/#', qos: 0 },
    ] }, 5));
    const [sub] = io.takeBackend(5) as mqttPacket.ISubscribePacket[];
    assert.deepEqual(sub.subscriptions.map((x) => x.topic), ['$share/alice/broadcast/+', '$share/team-lobby/broadcast/a']);
    assert.deepEqual(io.refusals, ['mqtt_share_group_refused', 'mqtt_share_group_refused', 'mqtt_subscribe_refused']);
    // An id with a "/" names no group (not even the "a" of "$share/a/b/..."); no room claim, no team group.
    const odd = open(4, groups, { ...alice, id: 'a/b', claims: {} });
    odd.io.takeBackend(4);
    odd.s.fromClient(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/a/broadcast/+', qos: 0 }, { topic: '$share/team-/broadcast/+', qos: 0 }] }, 4));
    assert.deepEqual((odd.io.takeClient(4)[0] as mqttPacket.ISubackPacket).granted, [0x80, 0x80]);
    assert.deepEqual(odd.io.refusals, ['mqtt_share_group_refused', 'mqtt_share_group_refused']);
  });

  it('placeholders never widen: an id of "#" subscribes to nothing', () => {
    const { s, io } = open(4, policy(), { ...alice, id: '#' });
    io.takeBackend(4);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/#', qos: 0 }, { topic: 'devices/+/x', qos: 0 }] }, 4));
    assert.equal(io.backend.length, 0);
    assert.deepEqual((io.takeClient(4)[0] as mqttPacket.ISubackPacket).granted, [0x80, 0x80]);
  });
});

describe('MQTT session: the broker\'s side', () => {
  it('the 5.0 CONNACK carries the gateway\'s bounds, the broker\'s other properties kept', () => {
    const io = new Recorder();
    const s = new MqttSession(policy({ max_qos: 1, limits: { max_packet: 1000, topic_aliases: 8 } }), alice, io);
    s.fromClient(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x' }, 5));
    s.fromBackend(gen({ cmd: 'connack', reasonCode: 0, sessionPresent: true,
      properties: { topicAliasMaximum: 100, maximumPacketSize: 1 << 20, receiveMaximum: 20, serverKeepAlive: 40 } }, 5));
    const [connack] = io.takeClient(5) as mqttPacket.IConnackPacket[];
    assert.equal(connack.sessionPresent, true);
    assert.equal(connack.properties?.topicAliasMaximum, 8);
    assert.equal(connack.properties?.maximumQoS, 1);
    assert.equal(connack.properties?.maximumPacketSize, 1000 + 1 + 2, 'the whole packet: Remaining Length limit, its encoding and the first byte');
    assert.equal(connack.properties?.receiveMaximum, 20);
    assert.equal(connack.properties?.serverKeepAlive, 40);
  });

  it('a broker SUBACK with the wrong number of codes ends the connection with 1014', () => {
    const { s, io } = open(4);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'broadcast/a', qos: 0 }, { topic: '#', qos: 0 }] }, 4));
    s.fromBackend(gen({ cmd: 'suback', messageId: 2, granted: [0, 0] }, 4));
    assert.equal(io.ended?.code, 1014);
    assert.match(io.ended?.reason ?? '', /^mqtt_backend_/);
  });

  it('the broker\'s packets before a malformed one reach the client before the 1014, however the bytes were cut; nothing after it', () => {
    const delivered = Buffer.concat([gen({ cmd: 'pingresp' }, 4),
      gen({ cmd: 'publish', topic: 'broadcast/a', payload: Buffer.from('hi'), qos: 0, retain: false, dup: false }, 4)]);
    const stream = Buffer.concat([delivered, Buffer.from([0x00, 0x00]), gen({ cmd: 'puback', messageId: 2 }, 4)]);
    for (const cut of [stream.length, 3, 1]) {
      const { s, io } = open(4);
      for (let i = 0; i < stream.length && io.ended === undefined; i += cut) s.fromBackend(stream.subarray(i, i + cut));
      assert.deepEqual(Buffer.concat(io.client), delivered, `reads of ${cut} bytes: the packets before it delivered, the PUBACK after it not`);
      assert.equal(io.ended?.code, 1014, `reads of ${cut} bytes: 1014`);
      assert.equal(io.ended?.reason, 'mqtt_backend_malformed', `reads of ${cut} bytes: the broker's malformed packet`);
    }
  });

  it('an answer waiting for the end of a broker packet reaches the client when a malformed packet follows in the same read', () => {
    const big = gen({ cmd: 'publish', topic: 'broadcast/a', payload: Buffer.alloc(5000, 7), qos: 0, retain: false, dup: false }, 4);
    const rest = Buffer.concat([big.subarray(100), Buffer.from([0x00, 0x00])]);
    for (const cut of [rest.length, 1]) {
      const { s, io } = open(4);
      s.fromBackend(big.subarray(0, 100));
      s.fromClient(gen({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: '#', qos: 0 }] }, 4));
      for (let i = 0; i < rest.length && io.ended === undefined; i += cut) s.fromBackend(rest.subarray(i, i + cut));
      assert.deepEqual(io.takeClient(4).map((p) => p.cmd), ['publish', 'suback'], `reads of ${cut} bytes: the PUBLISH, then the refusing SUBACK`);
      assert.equal(io.ended?.code, 1014, `reads of ${cut} bytes: 1014`);
    }
  });

  it('answers wait for the end of a broker packet being relayed', () => {
    const { s, io } = open(5);
    const big = gen({ cmd: 'publish', topic: 'broadcast/a', payload: Buffer.alloc(5000, 7), qos: 0, retain: false, dup: false }, 5);
    s.fromBackend(big.subarray(0, 100));
    s.fromClient(gen({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: '#', qos: 0 }] }, 5));
    s.fromBackend(big.subarray(100));
    const packets = io.takeClient(5);
    assert.deepEqual(packets.map((p) => p.cmd), ['publish', 'suback'], 'the SUBACK after the whole PUBLISH, not inside it');
  });
});


/** One refusal that ends the connection: what the client sends, and the answer per protocol version. */
interface EndingCase {
  what: string;
  config?: Record<string, unknown>;
  /** The protocol levels the case exists in (both when absent). */
  levels?: Level[];
  /** Sent before CONNECT (the session is fresh) rather than after an accepted one. */
  beforeConnect?: boolean;
  send: (level: Level) => Buffer[];
  reason: string;
  /** The reason in 3.1.1 when it differs. */
  reason311?: string;
  code: number;
  /** The client's last words per level: a 5.0 DISCONNECT / a CONNACK with this code; undefined: none. */
  v5: number | undefined;
  v311: number | undefined;
  /** The last words are a CONNACK (CONNECT refused) rather than a DISCONNECT. */
  connack?: boolean;
}

const publish = (level: Level, topic: string, extra: object = {}): Buffer =>
  gen({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false, ...extra }, level);
const subscribeTo = (level: Level, topics: string[], messageId = 1): Buffer =>
  gen({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 0 })) }, level);
const connectWith = (level: Level, extra: object = {}): Buffer =>
  gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'x', clean: true, keepalive: 30, ...extra }, level);
const deep = (n: number): string => Array.from({ length: n }, () => 'l').join('/');

const ENDING: EndingCase[] = [
  { what: 'PUBLISH topic over limits.topic_length', config: { publish: ['#'], limits: { topic_length: 16 } },
    send: (l) => [publish(l, 'devices/alice/0123456789')], reason: 'mqtt_topic_too_long', code: 1008, v5: 0x97, v311: undefined },
  { what: 'SUBSCRIBE filter over limits.topic_length', config: { subscribe: ['#'], limits: { topic_length: 16 } },
    send: (l) => [subscribeTo(l, ['devices/alice/0123456789'])], reason: 'mqtt_topic_too_long', code: 1008, v5: 0x97, v311: undefined },
  { what: 'PUBLISH topic over limits.topic_levels', config: { publish: ['#'], limits: { topic_levels: 4 } },
    send: (l) => [publish(l, deep(5))], reason: 'mqtt_topic_too_deep', code: 1008, v5: 0x97, v311: undefined },
  { what: 'SUBSCRIBE filter over limits.topic_levels', config: { subscribe: ['#'], limits: { topic_levels: 4 } },
    send: (l) => [subscribeTo(l, [deep(5)])], reason: 'mqtt_topic_too_deep', code: 1008, v5: 0x97, v311: undefined },
  { what: 'SUBSCRIBE over limits.filters_per_packet', config: { limits: { filters_per_packet: 2 } },
    send: (l) => [subscribeTo(l, ['broadcast/a', 'broadcast/b', 'broadcast/c'])], reason: 'mqtt_too_many_filters', code: 1008, v5: 0x97, v311: undefined },
  { what: 'UNSUBSCRIBE over limits.filters_per_packet', config: { limits: { filters_per_packet: 2 } },
    send: (l) => [gen({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a', 'b', 'c'] }, l)], reason: 'mqtt_too_many_filters', code: 1008, v5: 0x97, v311: undefined },
  { what: 'packet over limits.max_packet', config: { limits: { max_packet: 100 } },
    send: (l) => [publish(l, 'devices/alice/a', { payload: Buffer.alloc(200) })], reason: 'mqtt_packet_too_large', code: 1009, v5: 0x95, v311: undefined },
  { what: 'CONNECT over limits.max_connect_packet', config: { limits: { max_connect_packet: 100 } }, beforeConnect: true,
    send: (l) => [connectWith(l, { clientId: 'x'.repeat(200) })], reason: 'mqtt_packet_too_large', code: 1009, v5: undefined, v311: undefined },
  { what: 'a SUBSCRIBE filter that is not a filter', send: (l) => [subscribeTo(l, ['devices/#/x'])],
    reason: 'mqtt_topic_filter_invalid', code: 1002, v5: 0x8f, v311: undefined },
  { what: 'a PUBLISH without a topic or alias', send: (l) => [publish(l, '')],
    reason: 'mqtt_topic_invalid', reason311: 'mqtt_malformed', code: 1002, v5: 0x82, v311: undefined },
  { what: 'a packet only the broker sends', send: (l) => [gen({ cmd: 'pingresp' }, l)],
    reason: 'mqtt_wrong_direction', code: 1002, v5: 0x82, v311: undefined },
  { what: 'a SUBSCRIBE reusing the id of one waiting for its SUBACK',
    send: (l) => [subscribeTo(l, ['broadcast/a', '#'], 5), subscribeTo(l, ['broadcast/b'], 5)],
    reason: 'mqtt_packet_id_in_use', code: 1002, v5: 0x82, v311: undefined },
  { what: 'a PUBLISH over max_qos (QoS 2 of 1)', config: { max_qos: 1 },
    send: (l) => [publish(l, 'devices/alice/a', { qos: 2, messageId: 1 })], reason: 'mqtt_qos_refused', code: 1008, v5: 0x9b, v311: undefined },
  { what: 'a retained PUBLISH with retain: false', config: { retain: false },
    send: (l) => [publish(l, 'devices/alice/a', { retain: true })], reason: 'mqtt_retain_refused', code: 1008, v5: 0x9a, v311: undefined },
  { what: 'a refused PUBLISH with on_violation: close', config: { on_violation: 'close' },
    send: (l) => [publish(l, 'devices/bob/a', { qos: 1, messageId: 1 })], reason: 'mqtt_publish_refused', code: 1008, v5: 0x87, v311: undefined },
  { what: 'a refused SUBSCRIBE filter with on_violation: close', config: { on_violation: 'close' },
    send: (l) => [subscribeTo(l, ['broadcast/a', 'devices/bob/#'])], reason: 'mqtt_subscribe_refused', code: 1008, v5: 0x87, v311: undefined },
  { what: 'a will over max_qos', config: { max_qos: 0 }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l, { will: { topic: 'devices/alice/status', payload: Buffer.from('gone'), qos: 1, retain: false, ...(l === 5 ? { properties: {} } : {}) } })],
    reason: 'mqtt_qos_refused', code: 1008, v5: 0x9b, v311: 0x05 },
  { what: 'a retained will with retain: false', config: { retain: false }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l, { will: { topic: 'devices/alice/status', payload: Buffer.from('gone'), qos: 0, retain: true, ...(l === 5 ? { properties: {} } : {}) } })],
    reason: 'mqtt_retain_refused', code: 1008, v5: 0x9a, v311: 0x05 },
  { what: 'a user name the principal cannot fill', config: { connect: { client_id: '{principal.id}', username: '{claims.absent}' } }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l)], reason: 'mqtt_username', code: 1008, v5: 0x86, v311: 0x04 },
  { what: 'a client id the principal cannot fill', config: { connect: { client_id: '{claims.absent}' } }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l)], reason: 'mqtt_client_id', code: 1008, v5: 0x85, v311: 0x02 },
  { what: 'a Remaining Length that is not minimal', send: () => [Buffer.from([0x30, 0x80, 0x00])],
    reason: 'mqtt_malformed', code: 1002, v5: 0x81, v311: undefined },
  { what: 'a PUBLISH over limits.properties', levels: [5], config: { limits: { properties: 2 } },
    send: (l) => [publish(l, 'devices/alice/a', { properties: { userProperties: { a: '1', b: '2', c: '3' } } })],
    reason: 'mqtt_too_many_properties', code: 1008, v5: 0x97, v311: undefined },
  { what: 'a PUBLISH over limits.properties_size', levels: [5], config: { limits: { properties_size: 64 } },
    send: (l) => [publish(l, 'devices/alice/a', { properties: { userProperties: { a: 'x'.repeat(100) } } })],
    reason: 'mqtt_properties_too_large', code: 1008, v5: 0x97, v311: undefined },
  { what: 'a CONNECT over limits.properties', levels: [5], config: { limits: { properties: 2 } }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l, { properties: { userProperties: { a: '1', b: '2', c: '3' } } })],
    reason: 'mqtt_too_many_properties', code: 1008, v5: 0x97, v311: undefined },
  { what: 'a will topic over limits.topic_length', config: { limits: { topic_length: 16 } }, beforeConnect: true, connack: true,
    send: (l) => [connectWith(l, { will: { topic: 'devices/alice/0123456789', payload: Buffer.from('x'), qos: 0, retain: false, ...(l === 5 ? { properties: {} } : {}) } })],
    reason: 'mqtt_topic_too_long', code: 1008, v5: 0x97, v311: undefined },
  { what: 'a malformed CONNECT (reserved flag set)', beforeConnect: true, connack: true,
    send: (l) => { const b = connectWith(l); b[9] |= 0x01; return [b]; }, reason: 'mqtt_malformed', code: 1002, v5: 0x81, v311: undefined },
  { what: 'a topic alias of 0', levels: [5], send: (l) => [publish(l, 'devices/alice/a', { properties: { topicAlias: 0 } })],
    reason: 'mqtt_topic_alias_invalid', code: 1002, v5: 0x94, v311: undefined },
  { what: 'a DISCONNECT that sets a Session Expiry Interval after a CONNECT that set none (§3.14.2.2.2)', levels: [5],
    send: (l) => [gen({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 3600 } }, l)],
    reason: 'mqtt_disconnect_session_expiry', code: 1002, v5: 0x82, v311: undefined },
  { what: 'an AUTH packet', levels: [5], send: (l) => [gen({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } }, l)],
    reason: 'mqtt_auth_packet', code: 1002, v5: 0x82, v311: undefined },
  { what: 'a protocol level the gateway does not speak (6)', levels: [5], beforeConnect: true, connack: true,
    send: (l) => { const b = connectWith(l); b[8] = 6; return [b]; }, reason: 'mqtt_unsupported_version', code: 1002, v5: 0x84, v311: undefined },
  { what: 'a protocol name that is not MQTT', beforeConnect: true,
    send: (l) => [connectWith(l, { protocolId: 'MQTX' })], reason: 'mqtt_protocol_name', code: 1002, v5: undefined, v311: undefined },
];

describe('MQTT session: every refusal that ends the connection, per protocol version', () => {
  for (const c of ENDING) {
    for (const level of c.levels ?? [4, 5] as const) {
      it(`level ${level}: ${c.what} → ${c.reason}, close ${c.code}`, () => {
        const config = policy(c.config);
        let s: MqttSession;
        let io: Recorder;
        if (c.beforeConnect) {
          io = new Recorder();
          s = new MqttSession(config, alice, io);
        } else {
          ({ s, io } = open(level, config));
          io.takeBackend(level);
        }
        for (const bytes of c.send(level)) s.fromClient(bytes);
        s.dispose();
        assert.equal(io.ended?.reason, level === 4 ? c.reason311 ?? c.reason : c.reason, 'the audit reason');
        assert.equal(io.ended?.code, c.code, 'the WebSocket close code');
        const rc = level === 5 ? c.v5 : c.v311;
        const expected = rc === undefined ? undefined : c.connack
          ? (level === 5 ? Buffer.from([0x20, 3, 0, rc, 0]) : Buffer.from([0x20, 2, 0, rc]))
          : Buffer.from([0xe0, 1, rc]);
        assert.deepEqual(io.ended?.lastWords, expected, `the client's last words: ${rc === undefined ? 'none' : `code 0x${rc.toString(16)}`}`);
        const forwarded = parseAll(io.backend, level).filter((p) => p.cmd !== 'subscribe' || (p as mqttPacket.ISubscribePacket).messageId !== 5);
        assert.deepEqual(forwarded.map((p) => p.cmd), [], 'the refused packet never reached the broker');
      });
    }
  }
});

describe('MQTT session: DISCONNECT', () => {
  it('passes a DISCONNECT that keeps the session as it was: none, a reason code only, a Session Expiry Interval of 0; 3.1.1', () => {
    const goodbyes: Array<[Level, object]> = [
      [5, { cmd: 'disconnect' }], [5, { cmd: 'disconnect', reasonCode: 0x04 }],
      [5, { cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0, reasonString: 'bye' } }], [4, { cmd: 'disconnect' }],
    ];
    for (const [level, packet] of goodbyes) {
      const { s, io } = open(level);
      io.takeBackend(level);
      const bytes = gen(packet, level);
      s.fromClient(bytes);
      assert.equal(io.ended, undefined, JSON.stringify(packet));
      assert.deepEqual(Buffer.concat(io.backend), bytes, `${JSON.stringify(packet)} reaches the broker as it came`);
      assert.equal(s.goodbye, true, 'the broker may close now');
    }
  });

  it('with persistent_sessions, a CONNECT that set a Session Expiry Interval may change it at DISCONNECT', () => {
    const io = new Recorder();
    const s = new MqttSession(policy({ persistent_sessions: true }), alice, io);
    s.fromClient(connectWith(5, { properties: { sessionExpiryInterval: 60 } }));
    io.takeBackend(5);
    const bytes = gen({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 3600 } }, 5);
    s.fromClient(bytes);
    assert.equal(io.ended, undefined);
    assert.deepEqual(Buffer.concat(io.backend), bytes);
  });
});

describe('MQTT session: refusals answered in MQTT, the connection kept', () => {
  it('level 4 and 5: SUBSCRIBEs over limits.subscriptions get SUBACK 0x80 / 0x97, audited mqtt_too_many_subscriptions', () => {
    for (const level of [4, 5] as const) {
      const { s, io } = open(level, policy({ limits: { subscriptions: 1 } }));
      io.takeBackend(level);
      s.fromClient(subscribeTo(level, ['broadcast/a'], 1));
      s.fromBackend(gen({ cmd: 'suback', messageId: 1, granted: [0] }, level));
      s.fromClient(subscribeTo(level, ['broadcast/b'], 2));
      assert.deepEqual((io.takeClient(level) as mqttPacket.ISubackPacket[]).map((p) => p.granted), [[0], [level === 5 ? 0x97 : 0x80]]);
      assert.deepEqual(io.refusals, ['mqtt_too_many_subscriptions']);
      assert.deepEqual(io.takeBackend(level).map((p) => p.cmd), ['subscribe'], 'only the first SUBSCRIBE reached the broker');
      assert.equal(io.ended, undefined);
    }
  });

  it('resubscribing to a filter held already is no new subscription', () => {
    const { s, io } = open(4, policy({ limits: { subscriptions: 1 } }));
    io.takeBackend(4);
    s.fromClient(subscribeTo(4, ['broadcast/a'], 1));
    s.fromClient(subscribeTo(4, ['broadcast/a'], 2));
    assert.deepEqual(io.takeBackend(4).map((p) => p.cmd), ['subscribe', 'subscribe']);
    assert.deepEqual(io.refusals, []);
  });
});

describe('MQTT session: bounded state', () => {
  it('more SUBSCRIBEs waiting for a SUBACK the gateway must complete than it keeps: DISCONNECT 0x97, close 1008', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    // Each has a refused filter, so the gateway keeps its codes until the broker's SUBACK; the broker never answers.
    for (let id = 1; id <= 257 && !io.ended; id++) s.fromClient(subscribeTo(5, ['broadcast/a', 'devices/bob/#'], id));
    assert.equal(io.ended?.reason, 'mqtt_too_many_pending');
    assert.equal(io.ended?.code, 1008);
    assert.deepEqual(io.ended?.lastWords, Buffer.from([0xe0, 1, 0x97]));
    assert.equal(io.takeBackend(5).length, 256, 'the 257th never reached the broker');
  });

  it('more answers waiting for the broker\'s packet in relay to end than it keeps: close 1008, no DISCONNECT inside the broker\'s packet', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    const big = gen({ cmd: 'publish', topic: 'broadcast/a', payload: Buffer.alloc(5000, 7), qos: 0, retain: false, dup: false }, 5);
    s.fromBackend(big.subarray(0, 100));
    for (let id = 1; id <= 1025 && !io.ended; id++) s.fromClient(publish(5, 'devices/bob/a', { qos: 1, messageId: id }));
    assert.equal(io.ended?.reason, 'mqtt_answer_backlog');
    assert.equal(io.ended?.code, 1008);
    assert.equal(io.ended?.lastWords, undefined, 'the client is inside the broker\'s PUBLISH: no packet of the gateway\'s may cut into it');
  });

  it('a broker CONNACK over max_connect_packet ends the connection with 1014, audited mqtt_backend_packet_too_large', () => {
    const io = new Recorder();
    const s = new MqttSession(policy({ limits: { max_connect_packet: 100 } }), alice, io);
    s.fromClient(connectWith(5));
    s.fromBackend(gen({ cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { reasonString: 'x'.repeat(200) } }, 5));
    s.dispose();
    assert.equal(io.ended?.code, 1014);
    assert.equal(io.ended?.reason, 'mqtt_backend_packet_too_large');
    assert.equal(io.client.length, 0, 'nothing of it reached the client');
  });

  it('user properties pass on PUBLISH and on a SUBSCRIBE the gateway cut', () => {
    const { s, io } = open(5);
    io.takeBackend(5);
    const bytes = publish(5, 'devices/alice/a', { properties: { userProperties: { trace: 'abc' } } });
    s.fromClient(bytes);
    assert.equal(io.backend[0], bytes, 'the PUBLISH as it came');
    io.takeBackend(5);
    s.fromClient(gen({ cmd: 'subscribe', messageId: 3, properties: { userProperties: { trace: 'def' } },
      subscriptions: [{ topic: 'broadcast/a', qos: 0 }, { topic: 'devices/bob/#', qos: 0 }] }, 5));
    const [sub] = io.takeBackend(5) as mqttPacket.ISubscribePacket[];
    assert.deepEqual(sub.subscriptions.map((x) => x.topic), ['broadcast/a']);
    assert.deepEqual({ ...sub.properties?.userProperties }, { trace: 'def' });
  });
});
