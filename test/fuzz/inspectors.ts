/**
 * Fuzz targets of the protocol inspectors, driven as the relay drives them:
 * the STOMP inspector (StompInspector) and the MQTT inspector (MqttSession),
 * each under a service policy with injected identity, fed a conversation of
 * client and broker turns (test/fuzz/script.ts) through their public entry
 * points, so every input reaches the parsers, the checks and the rewrites
 * the gateway runs.
 *
 * Each conversation runs twice, every turn in one read and every turn cut
 * into reads of the chop size, and both runs must agree. Besides, whatever
 * an input does, the inspector must never throw or fail on an internal
 * error, the broker must see nothing before the client's CONNECT was
 * accepted and then the configured identity, and what the inspector passes
 * on must be well-formed.
 */
import assert from 'node:assert/strict';
import type { Admission } from '../../src/admitted.js';
import { stompInspectSchema } from '../../src/config/inspect.js';
import { mqttInspectSchema } from '../../src/config/inspect-mqtt.js';
import type { InspectorActions, Refusal, Violation } from '../../src/relay/inspector.js';
import { CLIENT_COMMANDS, SERVER_COMMANDS, type StompFrame } from '../../src/inspect/stomp/frame.js';
import { StompInspector } from '../../src/inspect/stomp/inspector.js';
import { StompParser } from '../../src/inspect/stomp/parser.js';
import { stompPolicy } from '../../src/inspect/stomp/policy.js';
import { PacketFramer, PASS } from '../../src/inspect/mqtt/framer.js';
import { readConnect, readPublishHead, readSubscribe } from '../../src/inspect/mqtt/packets.js';
import { compileFilters } from '../../src/inspect/mqtt/policy.js';
import { MqttSession } from '../../src/inspect/mqtt/session.js';
import { MAX_PENDING_SUBACKS, type MqttIO, type MqttRefusal } from '../../src/inspect/mqtt/state.js';
import { anyCovers, anyMatches, parseRequestedFilter } from '../../src/inspect/mqtt/topics.js';
import { chopOf, pieces, readConversation, type Turn } from './script.js';
import type { FuzzTarget } from './targets.js';

const PRINCIPAL = { id: 'alice', roles: [], claims: { room: '7' }, method: 'fuzz' };
/** Close codes an inspector may end a connection with. */
const CLOSE_CODES = [1002, 1008, 1009, 1014];

// ---------------------------------------------------------------- STOMP

const STOMP_CONFIG = stompInspectSchema.parse({
  subscribe: ['/queue/user.{principal.id}', '/topic/**'],
  send: ['/queue/user.{principal.id}'],
  connect: { login: '{principal.id}', passcode: 'gw-secret' },
  max_subscriptions: 4,
  max_frame: 4096, max_header_line: 512, max_headers: 16, max_body: 2048,
});
const STOMP_LIMITS = stompPolicy(STOMP_CONFIG, 65536).limits;
/** Limits wide enough that re-reading what the inspector sent checks its grammar only. */
const REREAD_LIMITS = { maxFrame: 1 << 20, maxHeaderLine: 1 << 20, maxHeaders: 1 << 10, maxBody: 1 << 20 };

/** The one frame a message holds (and nothing else but EOLs), read as the peer would; throws otherwise. */
function oneFrame(message: Buffer, commands: ReadonlySet<string>): StompFrame {
  const frames: StompFrame[] = [];
  const parser = new StompParser({ onFrame: (f) => { frames.push(f); }, onHeartbeat() { /* EOLs */ } }, commands, REREAD_LIMITS, '1.0');
  const err = parser.push(message, false);
  assert.equal(err, null, `the inspector sent a frame its peer cannot read: ${err?.reason}`);
  assert.equal(frames.length, 1, `one frame per message, not ${frames.length}`);
  return frames[0];
}

/** A frame the inspector passed on keeps the policy's limits (a rewritten CONNECT may carry more headers than the client's). */
function withinLimits(frame: StompFrame): void {
  if (frame.command === 'CONNECT' || frame.command === 'STOMP') return;
  const l = STOMP_LIMITS;
  assert.ok(frame.raw.length <= l.maxFrame && frame.body.length <= l.maxBody && frame.headers.length / 2 <= l.maxHeaders,
    `a ${frame.command} frame over the limits passed (${frame.raw.length} bytes, ${frame.headers.length / 2} headers)`);
}

/** Header values as written (1.0 reading: no unescaping; the allowed values hold nothing to escape). */
const values = (frame: StompFrame, name: string): string[] => frame.headers.filter((_, i, h) => i % 2 === 1 && h[i - 1] === name);

class StompRecorder implements InspectorActions {
  /** What the inspector did, heart-beats aside (how EOLs group depends on the reads). */
  readonly events: string[] = [];
  ended = false;
  private connected = false;

  sendToBackend(data: Buffer, isBinary: boolean): void {
    if (isEols(data)) return;
    const frame = oneFrame(data, CLIENT_COMMANDS);
    withinLimits(frame);
    if (!this.connected) {
      assert.ok(frame.command === 'CONNECT' || frame.command === 'STOMP', `${frame.command} reached the broker before CONNECT`);
      assert.deepEqual([values(frame, 'login'), values(frame, 'passcode')], [['alice'], ['gw-secret']], 'the broker sees the configured identity only');
      this.connected = true;
    }
    const destinations = values(frame, 'destination');
    if (frame.command === 'SEND') assert.deepEqual(destinations, ['/queue/user.alice'], 'a SEND passed to a destination outside the policy');
    if (frame.command === 'SUBSCRIBE') {
      assert.ok(destinations.length === 1 && (destinations[0] === '/queue/user.alice' || destinations[0].startsWith('/topic/')),
        `a SUBSCRIBE passed to ${JSON.stringify(destinations)}`);
    }
    this.events.push(`broker ${isBinary ? 'bin' : 'text'} ${data.toString('latin1')}`);
  }

  sendToClient(data: Buffer, isBinary: boolean): void {
    if (isEols(data)) return;
    withinLimits(oneFrame(data, SERVER_COMMANDS));
    this.events.push(`client ${isBinary ? 'bin' : 'text'} ${data.toString('latin1')}`);
  }

  pieceToBackend(): void { assert.fail('STOMP sends whole frames'); }
  pieceToClient(): void { assert.fail('STOMP sends whole frames'); }
  refused(r: Refusal): void { this.events.push(`refused ${r.reason}`); }

  end(v: Violation, direction?: string): void {
    assert.ok(CLOSE_CODES.includes(v.code), `close code ${v.code}`);
    this.events.push(`end ${v.code} ${v.reason} ${direction}`);
    this.ended = true;
  }
}

function isEols(data: Buffer): boolean {
  for (const b of data) if (b !== 0x0a && b !== 0x0d) return false;
  return true;
}

/** A conversation through one StompInspector; what it did. */
function stompOutcome(turns: readonly Turn[], chop: number, flags: number): string[] {
  const actions = new StompRecorder();
  const admission = { principal: PRINCIPAL } as unknown as Admission;
  const inspector = new StompInspector({ admission, actions, backendStream: (flags & 2) !== 0 }, stompPolicy(STOMP_CONFIG, 65536));
  try {
    for (const turn of turns) {
      for (const piece of pieces(turn.bytes, chop)) {
        // As the relay: nothing more once the inspector ended the connection.
        if (actions.ended) return actions.events;
        if (turn.side === 'client') inspector.fromClient(piece, (flags & 1) !== 0);
        else inspector.fromBackend(piece, (flags & 4) !== 0);
      }
    }
    return actions.events;
  } finally {
    inspector.end();
  }
}

const stomp: FuzzTarget = {
  name: 'stomp',
  run(data) {
    const turns = readConversation(Buffer.from(data.subarray(2)));
    const flags = data[1] ?? 0;
    assert.deepEqual(stompOutcome(turns, chopOf(data) || 1, flags), stompOutcome(turns, 0, flags), 'the outcome depends on how the bytes were cut');
  },
};

// ---------------------------------------------------------------- MQTT

/**
 * A real policy with small limits, so short runs reach them. Whatever the
 * session lets through to the broker is read back as the broker would and
 * must keep it: one CONNECT first, with the principal's identity; PUBLISH
 * topics (aliases resolved as the broker would) and SUBSCRIBE filters inside
 * the policy, QoS and retain within bounds, no packet over max_packet.
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
const MQTT_PROPERTIES = { count: MQTT_CONFIG.limits.properties, bytes: MQTT_CONFIG.limits.properties_size };
const PUBLISH_FILTERS = compileFilters(MQTT_CONFIG.publish, PRINCIPAL);
const SUBSCRIBE_FILTERS = compileFilters(MQTT_CONFIG.subscribe, PRINCIPAL);

class MqttRecorder implements MqttIO {
  readonly toBroker: Buffer[] = [];
  readonly toClientBytes: Buffer[] = [];
  readonly events: string[] = [];
  ended = false;
  toBackend(out: Buffer[]): void { this.toBroker.push(...out.map((b) => Buffer.from(b))); }
  toClient(out: Buffer[]): void { this.toClientBytes.push(...out.map((b) => Buffer.from(b))); }
  refused(r: MqttRefusal): void { this.events.push(`refused ${r.reason} ${r.destination}`); }
  close(code: number, r: MqttRefusal, lastWords?: Buffer, fromBroker?: boolean): void {
    assert.ok(!r.reason.endsWith('_internal'), `an internal error ended the connection: ${r.detail}`);
    assert.ok(CLOSE_CODES.includes(code), `close code ${code}`);
    this.events.push(`end ${code} ${r.reason} ${fromBroker === true} ${lastWords?.toString('hex') ?? ''}`);
    this.ended = true;
  }
}

/** What reached the broker, read back as the broker would: a CONNECT with the configured identity first, every packet inside the policy. */
function checkToBroker(stream: Buffer, headCap: number): void {
  let level = 0;
  const aliases = new Map<number, string>();
  const reader = new PacketFramer({
    want: (type, _flags, remaining) => (type === 3 ? Math.min(remaining, headCap) : type === 1 || type === 8 ? remaining : 0),
    decide(type, flags, remaining, head, fixedLength) {
      assert.ok(remaining <= MQTT_CONFIG.limits.max_packet, `a packet of ${remaining} bytes passed`);
      assert.ok(type === 1 || level !== 0, `packet type ${type} reached the broker before CONNECT`);
      if (type === 1) {
        const c = readConnect(head, fixedLength, MQTT_PROPERTIES);
        assert.ok(!c.unsupported && level === 0, 'one CONNECT, of 3.1.1 or 5.0');
        level = c.level;
        assert.deepEqual([c.clientId, c.username, c.password?.toString()], ['alice', 'alice', 'pw'], 'the broker sees the configured identity only');
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

interface MqttOutcome { toBroker: string; events: string[]; toClientLength: number; toClientSorted: string }

function mqttOutcome(turns: readonly Turn[], chop: number): MqttOutcome {
  const io = new MqttRecorder();
  const session = new MqttSession(MQTT_CONFIG, PRINCIPAL, io);
  try {
    for (const turn of turns) {
      for (const piece of pieces(turn.bytes, chop)) {
        if (io.ended) break;
        if (turn.side === 'client') session.fromClient(piece);
        else session.fromBackend(piece);
        assert.ok(session.aliases.size <= session.aliasMaximum, 'no more topic aliases than announced');
        assert.ok(session.subscriptions.size <= MQTT_CONFIG.limits.subscriptions, 'subscriptions within the limit');
        assert.ok(session.pendingSubacks.size <= MAX_PENDING_SUBACKS, 'pending SUBACKs bounded');
      }
    }
  } finally {
    session.dispose();
  }
  const toBroker = Buffer.concat(io.toBroker);
  checkToBroker(toBroker, session.publishHeadCap());
  // The gateway's own answers wait for a packet boundary of the broker's stream, which the cut moves: compare bytes, not order.
  const toClient = Buffer.concat(io.toClientBytes);
  new PacketFramer({ want: () => 0, decide: () => PASS }, 268_435_455).feed(toClient, []);
  return { toBroker: toBroker.toString('hex'), events: io.events, toClientLength: toClient.length, toClientSorted: Buffer.from(toClient).sort().toString('hex') };
}

const mqtt: FuzzTarget = {
  name: 'mqtt',
  run(data) {
    const turns = readConversation(Buffer.from(data.subarray(1)));
    assert.deepEqual(mqttOutcome(turns, chopOf(data) || 1), mqttOutcome(turns, 0), 'the outcome depends on how the bytes were cut');
  },
};

export const INSPECTOR_TARGETS: readonly FuzzTarget[] = [stomp, mqtt];
