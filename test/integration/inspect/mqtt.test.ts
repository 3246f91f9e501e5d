/**
 * MQTT inspection end to end: mqtt.js (3.1.1 and 5.0) over WebSocket through
 * the real gateway to a private Mosquitto — through a `tcp` service to its
 * MQTT port and through a `websocket` service to its WebSocket listener.
 *
 * The broker has its own password file and ACL: it knows only the password
 * the gateway injects (so a client's own credentials would be refused), and
 * its ACL mirrors the gateway's policy — except `restricted/#`, which the
 * broker allows everyone and the gateway allows no one. Tests that a refused
 * publish or subscribe never reaches the broker use that topic, so they fail
 * if the gateway lets it through. An `observer` connects to the broker
 * directly and sees everything that is published.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { observeBroker, startMosquitto, type BrokerObserver, type Mosquitto } from '../../helpers/mosquitto.js';

const SECRET = 'mqtt-inspection-test-secret-of-32-bytes!';
/** Every test ends within this, whatever the gateway does. */
const T = { timeout: 30_000 };
const BACKEND_PASSWORD = 'only-the-gateway-knows-this';

const POLICY = {
  publish: ['devices/{principal.id}/#', 'chat/{claims.room}'],
  subscribe: ['devices/{principal.id}/#', 'broadcast/+', 'chat/{claims.room}'],
  share_groups: ['{principal.id}'],
  connect: { client_id: '{principal.id}', username: '{principal.id}', password: '${MQTT_BACKEND_PASSWORD}' },
};

const ACL = (user: string): string[] => [
  `user ${user}`, `topic readwrite devices/${user}/#`, 'topic read broadcast/#', 'topic readwrite chat/lobby', 'topic readwrite restricted/#',
];

let broker: Mosquitto;
let gw: TestGateway;
let observer: BrokerObserver;

function token(sub: string): Promise<string> {
  return new SignJWT({ room: 'lobby' }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuer('test').setAudience('gatehouse')
    .setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
}

interface Connected { client: MqttClient; closed: Promise<number>; ws: () => WebSocket }

/** mqtt.js through the gateway as `user`, with credentials of its own that must never reach the broker. */
async function connect(path: string, user: string, version: 4 | 5, extra: Partial<IClientOptions> = {}): Promise<Connected> {
  const jwt = await token(user);
  let resolveClosed!: (code: number) => void;
  const closed = new Promise<number>((resolve) => { resolveClosed = resolve; });
  let socket: WebSocket | undefined;
  const client = await mqtt.connectAsync(gw.url(path), {
    protocolVersion: version,
    clientId: `${user}-own-id`,
    username: 'mallory',
    password: 'guess',
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    createWebsocket: (url: string, protocols: string[]) => {
      const ws = new WebSocket(url, protocols, { headers: { authorization: `Bearer ${jwt}` } });
      ws.once('close', (code) => resolveClosed(code));
      socket = ws;
      return ws as never;
    },
    ...extra,
  });
  return { client, closed, ws: () => socket! };
}

/** The next message `client` receives. */
function nextMessage(client: MqttClient): Promise<string> {
  return new Promise((resolve) => client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
}

before(async () => {
  broker = await startMosquitto({
    users: { alice: BACKEND_PASSWORD, bob: BACKEND_PASSWORD, observer: 'observer-password' },
    acl: [...ACL('alice'), ...ACL('bob'), 'user observer', 'topic readwrite #'],
    websockets: true,
  });
  const service = {
    allow_missing_origin: true,
    subprotocols: ['mqtt'],
    require_subprotocol: true,
    auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'test', audience: 'gatehouse', algorithms: ['HS256'], secret: SECRET }] }] },
    inspect: { mqtt: POLICY },
  };
  gw = await startGateway({
    services: {
      'mqtt-tcp': { ...service, path: '/mqtt', type: 'tcp', backend: `tcp://127.0.0.1:${broker.port}` },
      'mqtt-ws': { ...service, path: '/mqtt-ws', type: 'websocket', backend: `ws://127.0.0.1:${broker.wsPort}/` },
      'mqtt-persistent': {
        ...service, path: '/mqtt-persistent', type: 'tcp', backend: `tcp://127.0.0.1:${broker.port}`, inspect: { mqtt: { ...POLICY, persistent_sessions: true } },
      },
      'mqtt-strict': {
        ...service, path: '/mqtt-strict', type: 'tcp', backend: `tcp://127.0.0.1:${broker.port}`, subprotocols: ['mqtt', 'mqttv3.1'],
        inspect: { mqtt: { ...POLICY, retain: false, max_qos: 1, limits: { connect_timeout: '300ms' } } },
      },
    },
  }, { ...process.env, MQTT_BACKEND_PASSWORD: BACKEND_PASSWORD });
  observer = await observeBroker(broker, 'observer', 'observer-password');
});

after(async () => {
  await observer?.end();
  await gw?.stop();
  await broker?.stop();
});

for (const [service, path] of [['tcp', '/mqtt'], ['websocket', '/mqtt-ws']] as const) {
  for (const version of [4, 5] as const) {
    const label = `${service} service, MQTT ${version === 5 ? '5.0' : '3.1.1'}`;
    describe(label, () => {
      it('allowed subscribe and publish round-trip; the broker sees only the principal', T, async () => {
        const { client } = await connect(path, 'alice', version);
        try {
          const seenByBroker = await broker.connected('alice');
          assert.deepEqual(seenByBroker, { clientId: 'alice', username: 'alice' }, 'client id and user name are the principal\'s');
          await client.subscribeAsync('devices/alice/#', { qos: 1 });
          const got = nextMessage(client);
          await client.publishAsync('devices/alice/temp', `21.5 ${label}`, { qos: 1 });
          assert.equal(await got, `devices/alice/temp 21.5 ${label}`);
        } finally {
          await client.endAsync();
        }
      });

      it('a refused filter gets its SUBACK code while the others in the packet work', T, async () => {
        const counter = { service: path === '/mqtt' ? 'mqtt-tcp' : 'mqtt-ws', protocol: 'mqtt', reason: 'mqtt_subscribe_refused' };
        const before = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter);
        const { client } = await connect(path, 'alice', version);
        try {
          // mqtt.js reports a SUBACK with any failure code as an error carrying the packet.
          const suback = await client.subscribeAsync({ 'devices/alice/#': { qos: 0 }, 'restricted/#': { qos: 0 }, 'broadcast/+': { qos: 0 }, 'devices/+/temp': { qos: 0 } })
            .then(() => assert.fail('a SUBACK with failure codes'), (err: Error & { packet?: { granted: number[] } }) => err.packet);
          const refused = version === 5 ? 0x87 : 0x80;
          assert.deepEqual(suback?.granted, [0, refused, 0, refused], 'the refused filters have their code, the others what the broker granted');
          // The broker would deliver restricted/x had the subscription reached it; the marker comes after it.
          const got = nextMessage(client);
          await observer.client.publishAsync('restricted/x', 'secret', { qos: 1 });
          await observer.client.publishAsync('devices/alice/marker', 'after', { qos: 1 });
          assert.equal(await got, 'devices/alice/marker after', 'the refused filter created no subscription');
          await observer.observed('devices/alice/marker after');
          assert.ok(gw.auditReasons().includes('mqtt_subscribe_refused'));
          assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 2, 'one count per refused filter');
        } finally {
          await client.endAsync();
        }
      });

      it('a shared subscription joins only a share group of the principal\'s; another\'s group is refused and takes none of its messages', T, async () => {
        const alice = await connect(path, 'alice', version);
        const bob = await connect(path, 'bob', version);
        try {
          const topic = `broadcast/share${service}${version}`;
          const refused = version === 5 ? 0x87 : 0x80;
          const granted = async (c: MqttClient, filter: string): Promise<number[] | undefined> => c.subscribeAsync(filter, { qos: 1 })
            .then((g) => g.map((x) => x.qos), (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted);
          assert.deepEqual(await granted(alice.client, '$share/alice/broadcast/+'), [1], 'alice joins her own group');
          assert.deepEqual(await granted(bob.client, '$share/alice/broadcast/+'), [refused], 'bob may not join alice\'s group');
          assert.deepEqual(await granted(alice.client, '$share/alice/restricted/#'), [refused], 'her own group does not widen the filter');
          // Had bob joined, the broker would share the group's messages between the two: alice gets every one.
          const got: string[] = [];
          const both = new Promise<void>((resolve) => alice.client.on('message', (t, payload) => { got.push(`${t} ${payload.toString()}`); if (got.length === 2) resolve(); }));
          await observer.client.publishAsync(topic, 'one', { qos: 1 });
          await observer.client.publishAsync(topic, 'two', { qos: 1 });
          await both;
          assert.deepEqual(got, [`${topic} one`, `${topic} two`]);
          assert.ok(gw.logs.some((l) => l.audit && l.reason === 'mqtt_share_group_refused' && l.principal === 'bob' && l.destination === '$share/alice/broadcast/+'), 'audited');
        } finally {
          await Promise.all([alice.client.endAsync(), bob.client.endAsync()]);
        }
      });

      it('a refused publish never reaches a subscriber', T, async () => {
        const { client, closed } = await connect(path, 'alice', version);
        if (version === 5) {
          await assert.rejects(client.publishAsync('restricted/x', 'must not pass', { qos: 1 }), (err: Error & { code?: number }) => err.code === 0x87,
            'refused with PUBACK 0x87');
          // Per-client order: had the refused publish reached the broker, the observer would see it before this.
          await client.publishAsync('devices/alice/after', label, { qos: 1 });
          const upTo = await observer.observed(`devices/alice/after ${label}`);
          assert.ok(!upTo.some((e) => e.startsWith('restricted/')), `nothing on restricted/ reached the broker: ${upTo.join(', ')}`);
          assert.ok(client.connected, 'the connection stays');
          await client.endAsync();
        } else {
          client.publish('restricted/x', 'must not pass', { qos: 1 });
          assert.equal(await closed, 1008, '3.1.1 has no refusal code: the connection is closed');
          client.end(true);
          // A later publish by bob is the marker: the refused publish came before it.
          const bob = await connect(path, 'bob', version);
          await bob.client.publishAsync('devices/bob/after', label, { qos: 1 });
          const upTo = await observer.observed(`devices/bob/after ${label}`);
          assert.ok(!upTo.some((e) => e.startsWith('restricted/')), `nothing on restricted/ reached the broker: ${upTo.join(', ')}`);
          await bob.client.endAsync();
        }
        assert.ok(gw.auditReasons().includes('mqtt_publish_refused'));
      });

      it('QoS 1 and 2 flows pass both ways: the client\'s PUBLISH gets PUBACK / PUBCOMP, the broker\'s QoS 2 delivery completes', T, async () => {
        const { client } = await connect(path, 'alice', version);
        try {
          await client.subscribeAsync('devices/alice/qos/#', { qos: 2 });
          const received: string[] = [];
          const gotBoth = new Promise<void>((resolve) => client.on('message', (topic, payload, packet) => {
            received.push(`${topic} ${payload.toString()} qos ${packet.qos}`);
            if (received.length === 2) resolve();
          }));
          // publishAsync resolves on PUBACK (QoS 1) and on PUBCOMP after PUBREC and PUBREL (QoS 2).
          await client.publishAsync('devices/alice/qos/1', 'one', { qos: 1 });
          await client.publishAsync('devices/alice/qos/2', 'two', { qos: 2 });
          // mqtt.js emits a QoS 2 message on the broker's PUBREL, which answers the client's PUBREC.
          await gotBoth;
          assert.deepEqual(received.sort(), ['devices/alice/qos/1 one qos 1', 'devices/alice/qos/2 two qos 2']);
          await observer.observed('devices/alice/qos/2 two');
        } finally {
          await client.endAsync();
        }
      });

      it('a will on an allowed topic is published when the client drops; one outside the policy refuses the CONNECT and never reaches the broker', T, async () => {
        const will = (topic: string): Partial<IClientOptions> => ({ will: { topic, payload: Buffer.from(`gone ${label}`), qos: 1, retain: false } });
        const { ws } = await connect(path, 'alice', version, will('devices/alice/status'));
        ws().terminate(); // no DISCONNECT: the broker publishes the will
        await observer.observed(`devices/alice/status gone ${label}`);
        await assert.rejects(connect(path, 'bob', version, will('restricted/status')),
          (err: Error & { code?: number }) => err.code === (version === 5 ? 0x87 : 0x05), 'CONNACK 0x87 (5.0) / 0x05 (3.1.1)');
        // Had the CONNECT reached the broker, its will would be published when the gateway closed: before this marker.
        const bob = await connect(path, 'bob', version);
        await bob.client.publishAsync('devices/bob/after-will', label, { qos: 1 });
        const upTo = await observer.observed(`devices/bob/after-will ${label}`);
        assert.ok(!upTo.some((e) => e.startsWith('restricted/')), `no will on restricted/ reached the broker: ${upTo.join(', ')}`);
        await bob.client.endAsync();
        assert.ok(gw.auditReasons().includes('mqtt_will_refused'));
      });

      it('a retained message reaches a later subscriber, flagged retained, and is cleared', T, async () => {
        const { client } = await connect(path, 'alice', version);
        const topic = `devices/alice/retained/${service}${version}`;
        try {
          await client.publishAsync(topic, 'kept', { qos: 1, retain: true });
          const got = new Promise<string>((resolve) => client.once('message', (t, payload, packet) => resolve(`${t} ${payload.toString()} retain ${packet.retain}`)));
          await client.subscribeAsync(topic, { qos: 1 });
          assert.equal(await got, `${topic} kept retain true`);
          await client.publishAsync(topic, '', { qos: 1, retain: true });
        } finally {
          await client.endAsync();
        }
      });

      it('taking over another user\'s session with their client id is impossible', T, async () => {
        const alice = await connect(path, 'alice', version);
        try {
          await alice.client.subscribeAsync('devices/alice/#');
          const mallory = await connect(path, 'bob', version, { clientId: 'alice' });
          await broker.connected('bob');
          const taken = broker.connections().filter((c) => c.username !== 'observer' && c.clientId !== c.username);
          assert.deepEqual(taken, [], 'every connection got its own principal\'s client id, whatever it asked for');
          // alice's session survived: a round trip on it after bob's CONNECT was accepted.
          const got = nextMessage(alice.client);
          await alice.client.publishAsync('devices/alice/still-here', 'yes', { qos: 1 });
          assert.equal(await got, 'devices/alice/still-here yes');
          await observer.observed('devices/alice/still-here yes');
          assert.ok(alice.client.connected);
          await mallory.client.endAsync();
        } finally {
          await alice.client.endAsync();
        }
      });

      if (version === 5) {
        it('a topic alias rebound to a refused topic is refused, also when used alone', T, async () => {
          const { client } = await connect(path, 'alice', version);
          try {
            await client.publishAsync('devices/alice/a', 'set', { qos: 1, properties: { topicAlias: 1 } });
            await client.publishAsync('', 'by alias', { qos: 1, properties: { topicAlias: 1 } });
            await assert.rejects(client.publishAsync('restricted/x', 'rebind', { qos: 1, properties: { topicAlias: 1 } }),
              (err: Error & { code?: number }) => err.code === 0x87);
            await assert.rejects(client.publishAsync('', 'rebound use', { qos: 1, properties: { topicAlias: 1 } }),
              (err: Error & { code?: number }) => err.code === 0x87);
            await client.publishAsync('devices/alice/end', 'marker', { qos: 1 });
            const upTo = await observer.observed('devices/alice/end marker');
            assert.deepEqual(upTo.filter((e) => !e.startsWith('devices/alice/end')), ['devices/alice/a set', 'devices/alice/a by alias']);
          } finally {
            await client.endAsync();
          }
        });
      }
    });
  }
}

describe('MQTT inspection: bad input', () => {
  it('a text message is refused with 1003, a packet before CONNECT with 1002, an oversized one with 1009, a malformed 5.0 packet with DISCONNECT 0x81 and 1002; all audited, other connections unaffected', T, async () => {
    const jwt = await token('alice');
    const open = async (): Promise<WebSocket> => {
      const ws = new WebSocket(gw.url('/mqtt'), ['mqtt'], { headers: { authorization: `Bearer ${jwt}` } });
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      return ws;
    };
    const closeOf = (ws: WebSocket): Promise<number> => new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    const canary = await connect('/mqtt', 'bob', 5);
    const text = await open();
    const textClosed = closeOf(text);
    text.send('CONNECT');
    assert.equal(await textClosed, 1003);
    const early = await open();
    const earlyClosed = closeOf(early);
    early.send(Buffer.from([0xc0, 0x00])); // PINGREQ before CONNECT
    assert.equal(await earlyClosed, 1002);
    const huge = await open();
    const hugeClosed = closeOf(huge);
    huge.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])); // a 256 MiB CONNECT announced
    assert.equal(await hugeClosed, 1009);
    // 5.0 established: a malformed packet gets DISCONNECT 0x81 (malformed) before the close 1002.
    const v5 = await open();
    const received: Buffer[] = [];
    v5.on('message', (data: Buffer) => received.push(data));
    const v5Closed = closeOf(v5);
    const connack = new Promise((resolve) => v5.once('message', resolve));
    v5.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'x', clean: true, keepalive: 0 } as mqttPacket.IConnectPacket, { protocolVersion: 5 }));
    await connack;
    v5.send(Buffer.from([0x30, 0x80, 0x00])); // Remaining Length not minimally encoded
    assert.equal(await v5Closed, 1002);
    assert.deepEqual(received.at(-1), Buffer.from([0xe0, 0x01, 0x81]), 'DISCONNECT 0x81 before the close');
    const reasons = gw.auditReasons();
    for (const r of ['mqtt_connect_expected', 'mqtt_packet_too_large', 'mqtt_malformed', 'mqtt_text_message']) assert.ok(reasons.includes(r), `audited: ${r}`);
    const got = nextMessage(canary.client);
    await canary.client.subscribeAsync('devices/bob/#');
    await canary.client.publishAsync('devices/bob/canary', 'ok');
    assert.equal(await got, 'devices/bob/canary ok');
    await canary.client.endAsync();
  });
});

describe('MQTT inspection: sessions that outlive the connection', () => {
  it('refused by default (3.1.1 clean:false, 5.0 Clean Start 0 or a Session Expiry Interval) with CONNACK 0x05 / 0x87, audited; allowed with persistent_sessions: true', T, async () => {
    const asks: Array<[4 | 5, Partial<IClientOptions>]> = [
      [4, { clean: false }], [5, { clean: false }], [5, { clean: true, properties: { sessionExpiryInterval: 3600 } }],
    ];
    // The broker would accept each (it knows alice and her injected password): a refusing CONNACK is the gateway's.
    for (const [version, ask] of asks) {
      await assert.rejects(connect('/mqtt', 'alice', version, { ...ask, clientId: 'alice-persistent' }),
        (err: Error & { code?: number }) => err.code === (version === 5 ? 0x87 : 0x05), `${version} ${JSON.stringify(ask)}: CONNACK not authorized`);
    }
    const lines = gw.logs.filter((l) => l.audit && l.reason === 'mqtt_persistent_session_refused');
    assert.equal(lines.length, 3, 'each audited');
    assert.deepEqual([lines[0].principal, lines[0].command, lines[0].code], ['alice', 'CONNECT', 1008]);
    // Where the operator allows them, a persistent session is resumed: the broker reports it present.
    const first = await connect('/mqtt-persistent', 'bob', 4, { clean: false });
    await first.client.subscribeAsync('devices/bob/#', { qos: 1 });
    await first.client.endAsync();
    const again = await connect('/mqtt-persistent', 'bob', 4, { clean: false });
    const connack = (again.client as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket;
    assert.equal(connack?.sessionPresent, true, 'the broker kept bob\'s session');
    await again.client.endAsync();
    // Clean up the broker's session of bob, so no later test resumes it.
    const clean = await connect('/mqtt-persistent', 'bob', 4, { clean: true });
    await clean.client.endAsync();
  });
});

describe('MQTT inspection: a session made persistent at DISCONNECT', () => {
  it('5.0 DISCONNECT setting a Session Expiry Interval after a CONNECT that set none: DISCONNECT 0x82, close 1002, audited; the broker never gets it and keeps no session', T, async () => {
    const mark = broker.log().length;
    const { client, closed, ws } = await connect('/mqtt', 'alice', 5);
    await client.subscribeAsync('devices/alice/#', { qos: 1 });
    const disconnected = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    // Would turn the clean session into one the broker keeps for an hour (mqtt.js itself refuses to send it).
    ws().send(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 3600 } }, { protocolVersion: 5 }));
    assert.equal(await closed, 1002, 'close 1002 (protocol error)');
    assert.equal(await disconnected, 0x82, 'DISCONNECT 0x82 (protocol error), as the spec has a server answer it');
    client.end(true);
    const line = gw.logs.find((l) => l.audit && l.reason === 'mqtt_disconnect_session_expiry');
    assert.deepEqual([line?.principal, line?.command, line?.code], ['alice', 'DISCONNECT', 1002], 'audited');
    // The broker sees the connection end without a DISCONNECT (Mosquitto 2.0 would refuse this one itself,
    // logging "disconnected due to protocol error"; a broker that took it would keep the session)...
    const ended = /Client alice (closed its connection|disconnected)/;
    for (let i = 0; i < 100 && !ended.test(broker.log().slice(mark)); i++) await new Promise((r) => setTimeout(r, 50));
    const seen = broker.log().slice(mark);
    assert.match(seen, /Client alice closed its connection\./, 'the broker saw alice\'s connection end, and no DISCONNECT before it');
    assert.doesNotMatch(seen, /Received DISCONNECT from alice|alice disconnected due to protocol error/, 'the DISCONNECT never reached the broker');
    // ...so the session (expiry 0) ended with it: alice, straight at the broker, resumes nothing.
    const direct = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 5, clientId: 'alice', username: 'alice', password: BACKEND_PASSWORD, clean: false, reconnectPeriod: 0, connectTimeout: 5_000,
    });
    try {
      const connack = (direct as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket;
      assert.equal(connack?.sessionPresent, false, 'the broker kept no session of alice');
    } finally {
      await direct.endAsync();
    }
  });
});

describe('MQTT inspection: bounds, timeouts and the mqttv3.1 name (a service with retain: false, max_qos: 1, connect_timeout 300 ms)', () => {
  const STRICT = '/mqtt-strict';

  it('the real broker\'s 5.0 CONNACK reaches the client with Maximum QoS 1 and Retain Available 0', T, async () => {
    const { client } = await connect(STRICT, 'alice', 5);
    try {
      const props = (client as unknown as { _serverProperties?: { maximumQoS?: number; retainAvailable?: boolean } })._serverProperties;
      assert.equal(props?.maximumQoS, 1);
      assert.equal(props?.retainAvailable, false);
    } finally {
      await client.endAsync();
    }
  });

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 5 ? '5.0' : '3.1.1'}: a retained PUBLISH is refused${version === 5 ? ' with DISCONNECT 0x9A' : ''}, close 1008, and the broker never keeps it`, T, async () => {
      const topic = `devices/alice/strict-retained/${version}`;
      const refusals = { service: 'mqtt-strict', protocol: 'mqtt', reason: 'mqtt_retain_refused' };
      const refusedBefore = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', refusals);
      const violationsBefore = gw.gateway.metrics.get('gatehouse_violations_total', { reason: 'mqtt_retain_refused' });
      const { client, closed } = await connect(STRICT, 'alice', version);
      const disconnected = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
      client.publish(topic, 'must not be kept', { qos: 1, retain: true });
      assert.equal(await closed, 1008);
      if (version === 5) assert.equal(await disconnected, 0x9a, 'DISCONNECT 0x9A (retain not supported)');
      client.end(true);
      // The broker sends a topic's retained message on SUBSCRIBE, before anything published after it.
      const reader = await connect('/mqtt', 'alice', version);
      const first = new Promise<string>((resolve) => reader.client.once('message', (t, payload) => resolve(`${t} ${payload.toString()}`)));
      await reader.client.subscribeAsync(`${topic}/#`, { qos: 1 });
      await reader.client.publishAsync(`${topic}/marker`, 'live', { qos: 1 });
      assert.equal(await first, `${topic}/marker live`, 'no retained message was kept');
      await reader.client.endAsync();
      assert.ok(gw.auditReasons().includes('mqtt_retain_refused'));
      assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', refusals), refusedBefore + 1, 'counted as an inspection refusal');
      assert.equal(gw.gateway.metrics.get('gatehouse_violations_total', { reason: 'mqtt_retain_refused' }), violationsBefore + 1, 'and as a violation');
    });
  }

  it('a 5.0 CONNECT over a limit (40 user properties, 32 allowed) gets CONNACK 0x97 before the close', T, async () => {
    const userProperties = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, 'v']));
    await assert.rejects(connect(STRICT, 'alice', 5, { properties: { userProperties } }),
      (err: Error & { code?: number }) => err.code === 0x97, 'mqtt.js reports CONNACK 0x97 (quota exceeded)');
    assert.ok(gw.auditReasons().includes('mqtt_too_many_properties'));
  });

  it('no CONNECT within connect_timeout: close 1008, audited mqtt_connect_timeout', T, async () => {
    const jwt = await token('alice');
    const ws = new WebSocket(gw.url(STRICT), ['mqtt'], { headers: { authorization: `Bearer ${jwt}` } });
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    assert.equal(code, 1008);
    assert.ok(gw.auditReasons().includes('mqtt_connect_timeout'));
  });

  it('keep-alive is the broker\'s: PINGREQ and PINGRESP pass, and a client silent past 1.5 × its keep-alive is dropped by the broker', T, async () => {
    const { client } = await connect(STRICT, 'alice', 5, { keepalive: 1 });
    try {
      await new Promise<void>((resolve) => client.on('packetreceive', (p) => { if (p.cmd === 'pingresp') resolve(); }));
    } finally {
      await client.endAsync();
    }
    const jwt = await token('bob');
    const ws = new WebSocket(gw.url(STRICT), ['mqtt'], { headers: { authorization: `Bearer ${jwt}` } });
    const closed = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 1 } as mqttPacket.IConnectPacket));
    // 3.1.1 has no DISCONNECT from the broker: it just closes, which is no normal end for the client.
    assert.equal(await closed, 1014, 'the broker closing unasked is a bad gateway, not a normal close');
    assert.match(broker.log(), /Client bob has exceeded timeout, disconnecting/, 'Mosquitto\'s keep-alive ended it');
    const line = gw.logs.findLast((l) => l.audit && l.reason === 'mqtt_backend_closed');
    assert.deepEqual([line?.service, line?.direction, line?.code, line?.principal], ['mqtt-strict', 'to_client', 1014, 'bob'], 'audited as the broker\'s doing');
  });

  it('a client offering only mqttv3.1 (listed by the service) is inspected: MQTT 3.1.1 works, MQTT 3.1 gets CONNACK 0x01', T, async () => {
    const jwt = await token('alice');
    const open = async (): Promise<WebSocket> => {
      const ws = new WebSocket(gw.url(STRICT), ['mqttv3.1'], { headers: { authorization: `Bearer ${jwt}` } });
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      assert.equal(ws.protocol, 'mqttv3.1');
      return ws;
    };
    const reply = (ws: WebSocket): Promise<Buffer> => new Promise((resolve) => ws.once('message', (d: Buffer) => resolve(d)));
    const v311 = await open();
    const connack = reply(v311);
    v311.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 0 } as mqttPacket.IConnectPacket));
    assert.deepEqual(await connack, Buffer.from([0x20, 2, 0, 0]), 'CONNACK accepted');
    const suback = reply(v311);
    v311.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'restricted/#', qos: 0 }] } as mqttPacket.ISubscribePacket));
    assert.deepEqual(await suback, Buffer.from([0x90, 3, 0, 1, 0x80]), 'the policy applies: SUBACK 0x80');
    v311.close();
    const v31 = await open();
    const refused = reply(v31);
    const closed = new Promise<number>((resolve) => v31.once('close', (c) => resolve(c)));
    v31.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'x', clean: true, keepalive: 0 } as mqttPacket.IConnectPacket, { protocolVersion: 3 } as never));
    assert.deepEqual(await refused, Buffer.from([0x20, 2, 0, 0x01]), 'CONNACK 0x01: unacceptable protocol version');
    assert.equal(await closed, 1002);
  });
});
