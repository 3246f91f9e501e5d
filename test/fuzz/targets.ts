/**
 * Fuzz targets: one per parser that reads bytes from the network. Each takes
 * one input of arbitrary bytes and throws only when it finds a bug — an
 * exception that is not the parser's typed refusal, a limit not kept, or an
 * outcome that depends on how the bytes were cut into reads. The first input
 * byte chooses the cut (1 to 64 bytes per read, or the whole input), so the
 * fuzzer explores chops as well as content.
 *
 * Used by the short property run in `npm test` (test/unit/fuzz/) and the long
 * run of scripts/fuzz.ts; inputs that ever broke a target are kept in
 * test/fuzz/crashes/ and replayed by the unit test.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { FrameParser, type FrameParserOptions } from '../../src/websocket/frame-parser.js';
import { HandshakeError, validateUpgradeRequest } from '../../src/websocket/handshake.js';
import { parseResponseHead } from '../../src/websocket/client.js';
import { parseProxyHeader } from '../../src/front/proxy-protocol.js';
import { resolveClientAddress } from '../../src/front/forwarded.js';
import { validHostHeader, hostWithoutPort } from '../../src/http/host.js';
import { parseTokenList } from '../../src/http/tokens.js';
import { parseOrigin } from '../../src/http/origin.js';
import { CidrSet } from '../../src/http/cidr.js';
import { decodeFrames, FrameType } from '../../src/fallback/wire.js';
import { StompParser } from '../../src/inspect/stomp/parser.js';
import { CLIENT_COMMANDS } from '../../src/inspect/stomp/frame.js';
import mqttPacket from 'mqtt-packet';
import { mqttInspectSchema } from '../../src/config/inspect-mqtt.js';
import { PacketFramer, PASS } from '../../src/inspect/mqtt/framer.js';
import { readConnect, readPublishHead, readSubscribe } from '../../src/inspect/mqtt/packets.js';
import { compileFilters } from '../../src/inspect/mqtt/policy.js';
import { MqttSession } from '../../src/inspect/mqtt/session.js';
import { MAX_PENDING_SUBACKS } from '../../src/inspect/mqtt/state.js';
import { anyCovers, anyMatches, parseRequestedFilter } from '../../src/inspect/mqtt/topics.js';

export interface FuzzTarget {
  readonly name: string;
  /** One input; returns normally unless the input found a bug. */
  run(data: Uint8Array): void;
}

/** The read size a first byte stands for: 1..64, or 0 (the whole input in one read). */
function chopOf(data: Uint8Array): number {
  return data.length === 0 ? 0 : data[0] % 65;
}

function pieces(buf: Buffer, chop: number): Buffer[] {
  if (chop === 0 || chop >= buf.length) return [buf];
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chop) out.push(buf.subarray(i, i + chop));
  return out;
}

// ---------------------------------------------------------------- WebSocket frames

const FRAME_LIMITS: FrameParserOptions = { expectMasked: true, maxFrame: 200, maxMessage: 300, maxFragments: 8 };

/** Everything a parser told its handler, in order, as comparable text. */
function parseFrames(input: Buffer, chop: number, maskedBinary: boolean): string[] {
  const events: string[] = [];
  let message: Buffer[] = [];
  let length = 0;
  const parser: FrameParser = new FrameParser(FRAME_LIMITS, {
    onData(data, isBinary, first, fin) {
      if (first) { message = []; length = 0; }
      const mask = parser.pieceMask;
      const plain = Buffer.from(data);
      if (mask !== null) for (let i = 0; i < plain.length; i++) plain[i] ^= mask[i & 3];
      message.push(plain);
      length += data.length;
      assert.ok(length <= FRAME_LIMITS.maxMessage, `a message of ${length} bytes passed maxMessage`);
      if (fin) events.push(`${isBinary ? 'bin' : 'text'}:${Buffer.concat(message).toString('hex')}`);
    },
    onPing(payload) { events.push(`ping:${payload.toString('hex')}`); },
    onPong(payload) { events.push(`pong:${payload.toString('hex')}`); },
    onClose(code, reason) { events.push(`close:${code}:${reason}`); },
    onError(code) { events.push(`error:${code}`); },
  });
  parser.maskedBinary = maskedBinary;
  // The parser unmasks in place: each run gets its own copy.
  for (const p of pieces(Buffer.from(input), chop)) parser.push(p);
  return events;
}

const frameParser: FuzzTarget = {
  name: 'frame-parser',
  run(data) {
    const input = Buffer.from(data.subarray(1));
    const whole = parseFrames(input, 0, false);
    const cut = parseFrames(input, chopOf(data) || 1, data.length > 1 && (data[1] & 1) === 1);
    // After an error the valid prefix may end mid-message differently; complete events must agree.
    assert.deepEqual(cut, whole, 'the outcome depends on how the bytes were cut');
    assert.ok(whole.filter((e) => e.startsWith('error:') || e.startsWith('close:')).length <= 1, 'at most one end');
  },
};

// ---------------------------------------------------------------- HTTP heads

/** A request head as Node's parser would hand it over: rawHeaders and the folded headers object. */
function requestOf(text: string): { method: string; httpVersion: string; headers: IncomingHttpHeaders; rawHeaders: string[] } {
  const [requestLine = '', ...lines] = text.split('\r\n');
  const [method = '', , version = ''] = requestLine.split(' ');
  const rawHeaders: string[] = [];
  const headers: Record<string, string | string[]> = {};
  for (const line of lines) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const name = line.slice(0, c);
    const value = line.slice(c + 1).trim();
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (key !== 'host') headers[key] = Array.isArray(prev) ? [...prev, value] : `${prev}, ${value}`;
  }
  return { method, httpVersion: version.replace(/^HTTP\//, ''), headers, rawHeaders };
}

const TRUSTED = new CidrSet(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);

const handshake: FuzzTarget = {
  name: 'handshake',
  run(data) {
    const text = Buffer.from(data).toString('latin1');
    const req = requestOf(text);
    try {
      const info = validateUpgradeRequest(req, { maxProtocolTokens: 16, maxProtocolBytes: 4096 });
      assert.equal(Buffer.from(info.key, 'base64').length, 16, 'an accepted key is 16 bytes of base64');
      assert.ok(info.protocols.length <= 16, 'at most 16 subprotocols accepted');
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      assert.ok(err.status >= 400 && err.status < 500, `a refusal is a 4xx, not ${err.status}`);
    }
    const host = req.headers.host;
    if (typeof host === 'string' && validHostHeader(host)) {
      assert.doesNotMatch(hostWithoutPort(host), /[\s/\\@]/, 'a valid Host yields a plain name');
    }
    const tokens = parseTokenList(text.slice(0, 5000), { maxBytes: 4096, maxTokens: 16 });
    if (tokens.ok) assert.ok(tokens.tokens.length <= 16 && new Set(tokens.tokens).size === tokens.tokens.length, 'tokens bounded and unique');
    const origin = parseOrigin(text.slice(0, 2048));
    if (origin !== undefined) assert.ok(text.length <= 2048, 'parsed origins come from bounded input');
    for (const forwardedHeader of ['x-forwarded-for', 'forwarded'] as const) {
      const peer = { address: '10.1.2.3', port: 1, source: 'socket' as const };
      const client = resolveClientAddress(peer, req.headers, TRUSTED, forwardedHeader);
      assert.ok(client === peer || client.source === forwardedHeader, 'the client comes from the peer or the configured header only');
    }
    try {
      const head = parseResponseHead(text);
      assert.ok(head.statusCode >= 100 && head.statusCode <= 999, 'a status of three digits');
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
    }
    const proxy = parseProxyHeader(Buffer.from(data));
    if (proxy.status === 'ok') assert.ok(proxy.length <= data.length, 'a PROXY header inside the input');
  },
};

// ---------------------------------------------------------------- fallback wire format

const fallbackWire: FuzzTarget = {
  name: 'fallback-wire',
  run(data) {
    const body = Buffer.from(data);
    const { frames, error } = decodeFrames(body, { maxMessage: 1024, maxFrames: 64 });
    assert.ok(frames.length <= 64, 'at most maxFrames frames');
    for (const f of frames) {
      if (f.type === FrameType.TEXT || f.type === FrameType.BINARY) assert.ok(f.payload.length <= 1024, 'no message over maxMessage');
    }
    if (error) assert.ok([1002, 1007, 1009].includes(error.closeCode), `a close code a WebSocket would use, not ${error.closeCode}`);
  },
};

// ---------------------------------------------------------------- STOMP

const STOMP_LIMITS = { maxFrame: 4096, maxHeaderLine: 512, maxHeaders: 16, maxBody: 2048 };

const stomp: FuzzTarget = {
  name: 'stomp',
  run(data) {
    const input = Buffer.from(data.subarray(1));
    const outcome = (chop: number): string[] => {
      const events: string[] = [];
      const parser = new StompParser({
        onFrame(frame) { events.push(`${frame.command}:${frame.body.length}`); },
        onHeartbeat() { /* EOLs between frames carry nothing to compare */ },
      }, CLIENT_COMMANDS, STOMP_LIMITS, '1.2');
      for (const p of pieces(input, chop)) {
        const err = parser.push(p, (data[0] & 1) === 1);
        assert.ok(parser.buffered <= STOMP_LIMITS.maxFrame * 2, `the parser holds ${parser.buffered} bytes`);
        if (err) { events.push(`error:${err.reason}`); break; }
      }
      return events;
    };
    assert.deepEqual(outcome(chopOf(data) || 1), outcome(0), 'the outcome depends on how the bytes were cut');
  },
};

// ---------------------------------------------------------------- MQTT: the inspector's whole path

/**
 * The MQTT target drives the inspector as a connection does: an MqttSession
 * (framer, decoders, the CONNECT/PUBLISH/SUBSCRIBE rules, the broker-side
 * rewrites) under a real policy with small limits, so short runs reach them.
 * Besides "typed refusals only" and "same outcome however cut", whatever it
 * lets through to the broker is read back and must keep the policy: the
 * principal's identity in CONNECT, PUBLISH topics (aliases resolved as the
 * broker would) and SUBSCRIBE filters inside the policy, QoS and retain
 * within bounds, no packet over max_packet.
 */
const MQTT_CONFIG = mqttInspectSchema.parse({
  publish: ['devices/{principal.id}/#', 'chat/+'],
  subscribe: ['devices/{principal.id}/#', 'broadcast/+'],
  retain: false,
  max_qos: 1,
  connect: { client_id: '{principal.id}', username: '{principal.id}', password: 'pw' },
  limits: { max_packet: 2048, max_connect_packet: 512, topic_length: 64, topic_levels: 8, properties: 8, properties_size: 256,
    filters_per_packet: 4, subscriptions: 6, topic_aliases: 4 },
});
const MQTT_PRINCIPAL = { id: 'alice', claims: {} };
const MQTT_PROPERTIES = { count: MQTT_CONFIG.limits.properties, bytes: MQTT_CONFIG.limits.properties_size };
const PUBLISH_FILTERS = compileFilters(MQTT_CONFIG.publish, MQTT_PRINCIPAL);
const SUBSCRIBE_FILTERS = compileFilters(MQTT_CONFIG.subscribe, MQTT_PRINCIPAL);

/** An open session for the input to continue: CONNECT, the broker's CONNACK, a SUBSCRIBE the broker still has to answer (one filter refused). */
function mqttPrelude(level: 4 | 5): { client: Buffer[]; broker: Buffer } {
  const gen = (packet: object): Buffer => mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion: level });
  return {
    client: [
      gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: level, clientId: 'bob', clean: true, keepalive: 30 }),
      gen({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'devices/alice/#', qos: 1 }, { topic: 'devices/+/t', qos: 0 }] }),
    ],
    broker: gen({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false, ...(level === 5 ? { properties: { topicAliasMaximum: 10 } } : {}) }),
  };
}

/** What reached the broker, read back as the broker would: every packet inside the policy. */
function checkToBroker(stream: Buffer, headCap: number): void {
  let level = 0;
  const aliases = new Map<number, string>();
  const reader = new PacketFramer({
    want: (type, _flags, remaining) => (type === 3 ? Math.min(remaining, headCap) : type === 1 || type === 8 ? remaining : 0),
    decide(type, flags, remaining, head, fixedLength) {
      assert.ok(remaining <= MQTT_CONFIG.limits.max_packet, `a packet of ${remaining} bytes passed`);
      if (type === 1) {
        const c = readConnect(head, fixedLength, MQTT_PROPERTIES);
        assert.ok(!c.unsupported && level === 0, 'one CONNECT, of 3.1.1 or 5.0');
        level = c.level;
        assert.deepEqual([c.clientId, c.username, c.password?.toString()], ['alice', 'alice', 'pw'], 'the broker sees the principal only');
        if (c.will) assert.ok(anyMatches(PUBLISH_FILTERS, c.will.topic.split('/')) && !c.will.retain && c.will.qos <= 1, 'a will inside the policy');
      } else if (type === 3) {
        const qos = (flags >> 1) & 3;
        assert.ok(qos <= MQTT_CONFIG.max_qos && (flags & 1) === 0, `PUBLISH QoS ${qos} retain ${flags & 1} passed`);
        const h = readPublishHead(head, fixedLength, qos, level, MQTT_PROPERTIES);
        const topic = h.topic.length > 0 ? h.topic.toString() : aliases.get(h.alias);
        if (h.topic.length > 0 && h.alias !== 0) aliases.set(h.alias, h.topic.toString());
        assert.ok(topic !== undefined && anyMatches(PUBLISH_FILTERS, topic.split('/')), `PUBLISH to ${topic} passed`);
      } else if (type === 8) {
        for (const e of readSubscribe(head, fixedLength, level, MQTT_PROPERTIES, 1000).entries) {
          const requested = parseRequestedFilter(e.filter);
          assert.ok(requested && anyCovers(SUBSCRIBE_FILTERS, requested.levels), `SUBSCRIBE to ${e.filter} passed`);
          assert.ok((e.options & 3) <= MQTT_CONFIG.max_qos, 'subscription QoS lowered to max_qos');
        }
      }
      return PASS;
    },
  }, 268_435_455);
  reader.feed(stream, []);
}

/** One run of the session; side 0: the client's bytes from the start, 1: the client's after the prelude, 2: the broker's after it. */
function mqttOutcome(side: number, level: 4 | 5, input: Buffer, chop: number): string[] {
  const backend: Buffer[] = [];
  const client: Buffer[] = [];
  const events: string[] = [];
  const session = new MqttSession(MQTT_CONFIG, MQTT_PRINCIPAL, {
    toBackend(p) { backend.push(...p); },
    toClient(p) { client.push(...p); },
    refused(r) { events.push(`refused:${r.reason}:${r.destination}`); },
    close(code, r, lastWords) { events.push(`close:${code}:${r.reason}:${lastWords?.toString('hex') ?? ''}`); },
  });
  try {
    if (side > 0) {
      const prelude = mqttPrelude(level);
      session.fromClient(prelude.client[0]);
      session.fromBackend(prelude.broker);
      session.fromClient(prelude.client[1]);
    }
    for (const p of pieces(input, chop)) {
      if (side === 2) session.fromBackend(p);
      else session.fromClient(p);
      assert.ok(session.aliases.size <= session.aliasMaximum, 'no more topic aliases than announced');
      assert.ok(session.subscriptions.size <= MQTT_CONFIG.limits.subscriptions, 'subscriptions within the limit');
      assert.ok(session.pendingSubacks.size <= MAX_PENDING_SUBACKS, 'pending SUBACKs bounded');
    }
  } finally {
    session.dispose();
  }
  for (const e of events) assert.doesNotMatch(e, /^close:\d+:mqtt_(backend_)?internal:/, 'an exception other than a typed refusal');
  const toBroker = Buffer.concat(backend);
  const toClient = Buffer.concat(client);
  checkToBroker(toBroker, session.publishHeadCap());
  new PacketFramer({ want: () => 0, decide: () => PASS }, 268_435_455).feed(toClient, []);
  return [...events, `broker:${toBroker.toString('hex')}`, `client:${toClient.toString('hex')}`];
}

const mqtt: FuzzTarget = {
  name: 'mqtt',
  run(data) {
    const setup = data[1] ?? 0;
    const level = setup & 1 ? 5 : 4;
    const side = (setup >> 1) % 3;
    const input = Buffer.from(data.subarray(2));
    assert.deepEqual(mqttOutcome(side, level, input, chopOf(data) || 1), mqttOutcome(side, level, input, 0),
      'the outcome depends on how the bytes were cut');
  },
};

export const TARGETS: readonly FuzzTarget[] = [frameParser, handshake, fallbackWire, stomp, mqtt];
