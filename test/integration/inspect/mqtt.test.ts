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

interface Connected { client: MqttClient; closed: Promise<number> }

/** mqtt.js through the gateway as `user`, with credentials of its own that must never reach the broker. */
async function connect(path: string, user: string, version: 4 | 5, extra: Partial<IClientOptions> = {}): Promise<Connected> {
  const jwt = await token(user);
  let resolveClosed!: (code: number) => void;
  const closed = new Promise<number>((resolve) => { resolveClosed = resolve; });
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
      return ws as never;
    },
    ...extra,
  });
  return { client, closed };
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
