/**
 * The STOMP inspector of one connection (subprotocols v10.stomp, v11.stomp,
 * v12.stomp; docs/inspection.md). Both directions are parsed as streams
 * (parser.ts), whatever the WebSocket message boundaries; every frame goes on
 * as one whole message (one STOMP frame per WebSocket message, as brokers
 * and browser clients expect), as the bytes that arrived unless a check
 * rewrote it.
 *
 * From the client: CONNECT (or STOMP) first, within `connect_timeout`, and
 * only once (connect.ts); then each frame is checked (checks.ts). Bad syntax
 * → ERROR frame, close 1002; over a limit → ERROR, close 1009; refused by
 * policy → ERROR (with `receipt-id` when the frame asked for a receipt;
 * none with `on_violation: close`), close 1008. Nothing the client sends
 * before its CONNECT reaches the broker.
 *
 * From the broker: CONNECTED (or ERROR) first, naming a version the client
 * accepted; then anything a server may send. Broker input that breaks the
 * grammar or the limits closes the client with 1014 (the relay audits it);
 * nothing malformed is passed on. So does a broker that closes the
 * connection other than after its ERROR frame or the client's DISCONNECT.
 *
 * Heart-beats (EOLs outside frames) go through both ways. With a byte-stream
 * (`tcp`) backend, frames reach the client as text messages when they are
 * UTF-8, else binary; with a WebSocket backend each keeps the type the broker gave it.
 */
import { isUtf8 } from 'node:buffer';
import type { Inspector, InspectorActions, InspectorContext, Violation } from '../../relay/inspector.js';
import type { PlaceholderIdentity } from '../placeholders.js';
import { checkConnect } from './connect.js';
import { checkSend, checkSubscribe, checkUnsubscribe, refusal, type Refusal } from './checks.js';
import { CLIENT_COMMANDS, SERVER_COMMANDS, type StompError, type StompFrame, type StompVersion } from './frame.js';
import { StompParser, type StompFrameSink } from './parser.js';
import type { StompPolicy } from './policy.js';
import { writeFrame } from './writer.js';

const BROKER_HEADERS_READ: ReadonlySet<string> = new Set(['CONNECTED']);

/** A heart-beat; each send gets its own copy (a sent buffer is the relay's). */
const EOL = '\n';

const enum Phase { AwaitingConnect, Connecting, Connected, Ended }

export class StompInspector implements Inspector {
  readonly name = 'stomp';
  private readonly actions: InspectorActions;
  private readonly identity: PlaceholderIdentity | undefined;
  private readonly backendStream: boolean;
  private readonly fromClientParser: StompParser;
  private readonly fromBrokerParser: StompParser;
  private phase = Phase.AwaitingConnect;
  private accepted: readonly StompVersion[] = [];
  /** Client frames read after CONNECT, before CONNECTED said which version they are in. */
  private readAhead = 0;
  /** The open subscriptions, key (id) → destination (created at the first SUBSCRIBE). */
  private subscriptions?: Map<string, string>;
  private timer?: NodeJS.Timeout;
  /** The client sent DISCONNECT or the broker an ERROR: the broker may close now. */
  private goodbye = false;

  constructor(context: InspectorContext, private readonly policy: StompPolicy) {
    this.actions = context.actions;
    this.identity = context.admission.principal;
    this.backendStream = context.backendStream;
    // Before CONNECTED the version is unknown; CONNECT and CONNECTED are never escaped, so any will do until then.
    this.fromClientParser = new StompParser(new ClientFrames(this), CLIENT_COMMANDS, policy.limits, '1.2');
    // Of the broker's frames only CONNECTED is read (the version); MESSAGE, RECEIPT and ERROR pass as they came.
    this.fromBrokerParser = new StompParser(new BrokerFrames(this), SERVER_COMMANDS, policy.limits, '1.2', BROKER_HEADERS_READ);
    this.timer = setTimeout(connectTimedOut, policy.connectTimeout, this);
    this.timer.unref?.();
  }

  fromClient(data: Buffer, isBinary: boolean): void {
    const err = this.fromClientParser.push(data, isBinary);
    if (err !== null && this.phase !== Phase.Ended) this.clientBroke(err);
  }

  fromBackend(data: Buffer, isBinary: boolean): void {
    const err = this.fromBrokerParser.push(data, isBinary);
    if (err !== null && this.phase !== Phase.Ended) this.brokerBroke(`${err.reason}: ${err.message}`);
  }

  /** A broker closes after its ERROR frame, or after the client's DISCONNECT; any other end is a fault (1014). */
  backendEnded(): Violation | undefined {
    if (this.goodbye) return undefined;
    return { code: 1014, reason: 'stomp_backend_closed', detail: 'the broker closed the connection without an ERROR frame or the client\'s DISCONNECT' };
  }

  end(): void {
    this.phase = Phase.Ended;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.fromClientParser.stop();
    this.fromBrokerParser.stop();
  }

  /** @internal The connect timer fired. */
  connectTimedOut(): void {
    this.timer = undefined;
    if (this.phase !== Phase.AwaitingConnect) return;
    this.refuse(undefined, refusal(1008, 'stomp_connect_timeout', 'no CONNECT in time'), 'CONNECT');
  }

  /** @internal A whole frame from the client. */
  clientFrame(frame: StompFrame): void {
    if (this.phase === Phase.Ended) return;
    const c = frame.command;
    if (c === 'CONNECT' || c === 'STOMP') return this.connectFrame(frame);
    if (this.phase === Phase.AwaitingConnect) return this.refuse(frame, refusal(1002, 'stomp_connect_expected', 'CONNECT must come first'));
    if (this.phase === Phase.Connecting) this.readAhead++;
    let verdict: Refusal | Buffer | undefined;
    if (c === 'SEND') verdict = checkSend(frame, this.policy, this.identity, this.fromClientParser.version);
    else if (c === 'SUBSCRIBE') verdict = this.subscribe(frame);
    else if (c === 'UNSUBSCRIBE') verdict = this.unsubscribe(frame);
    else if (c === 'DISCONNECT') this.goodbye = true;
    if (verdict === undefined) this.actions.sendToBackend(frame.raw, frame.binary);
    else if (Buffer.isBuffer(verdict)) this.actions.sendToBackend(verdict, frame.binary);
    else this.refuse(frame, verdict);
  }

  /** @internal EOLs alone from the client: a heart-beat, passed on once connected. */
  clientHeartbeat(): void {
    if (this.phase === Phase.Connecting || this.phase === Phase.Connected) this.actions.sendToBackend(Buffer.from(EOL), false);
  }

  /** @internal A whole frame from the broker. */
  brokerFrame(frame: StompFrame): void {
    if (this.phase === Phase.Ended) return;
    if (this.phase !== Phase.Connected) {
      if (frame.command === 'CONNECTED') {
        const problem = this.connected(frame);
        if (problem !== undefined) return this.brokerBroke(problem);
      } else if (frame.command !== 'ERROR' || this.phase === Phase.AwaitingConnect) {
        return this.brokerBroke(`${frame.command} before CONNECTED`);
      }
    } else if (frame.command === 'CONNECTED') {
      return this.brokerBroke('a second CONNECTED');
    }
    if (frame.command === 'ERROR') this.goodbye = true;
    this.actions.sendToClient(frame.raw, this.backendStream ? !isUtf8(frame.raw) : frame.binary);
  }

  /** @internal EOLs alone from the broker: a heart-beat for the client. */
  brokerHeartbeat(): void {
    if (this.phase === Phase.Connected) this.actions.sendToClient(Buffer.from(EOL), false);
  }

  private connectFrame(frame: StompFrame): void {
    if (this.phase !== Phase.AwaitingConnect) return this.refuse(frame, refusal(1002, 'stomp_repeated_connect', 'CONNECT was already sent'));
    const outcome = checkConnect(frame, this.policy, this.identity);
    if ('code' in outcome) return this.refuse(frame, outcome);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.accepted = outcome.accepted;
    this.phase = Phase.Connecting;
    this.fromClientParser.version = outcome.accepted[outcome.accepted.length - 1];
    this.actions.sendToBackend(outcome.bytes, frame.binary);
  }

  /** CONNECTED: the version must be one the client accepted; returns the problem, if any. */
  private connected(frame: StompFrame): string | undefined {
    if (this.phase !== Phase.Connecting) return 'CONNECTED before CONNECT';
    const version = (frame.header('version') ?? '1.0') as StompVersion;
    if (!this.accepted.includes(version)) return `version ${JSON.stringify(version.slice(0, 16))} was not offered`;
    // Frames read ahead were read as the highest accepted version; a broker choosing another would read them otherwise.
    if (this.readAhead > 0 && version !== this.fromClientParser.version) return `version ${version} after frames read as ${this.fromClientParser.version}`;
    this.fromClientParser.version = version;
    this.fromBrokerParser.version = version;
    this.phase = Phase.Connected;
    return undefined;
  }

  private subscribe(frame: StompFrame): Refusal | Buffer | undefined {
    const key = subscriptionKey(frame);
    const open = this.subscriptions ??= new Map();
    const known = open.has(key);
    const verdict = checkSubscribe(frame, this.policy, this.identity, open.size, known, this.fromClientParser.version);
    // The broker refuses an id already in use: the first destination stays the one the id names.
    if (!known && (verdict === undefined || Buffer.isBuffer(verdict))) open.set(key, frame.header('destination')!);
    return verdict;
  }

  private unsubscribe(frame: StompFrame): Refusal | Buffer | undefined {
    const key = subscriptionKey(frame);
    const verdict = checkUnsubscribe(frame, this.identity, this.subscriptions?.get(key), this.fromClientParser.version);
    if (verdict === undefined || Buffer.isBuffer(verdict)) this.subscriptions?.delete(key);
    return verdict;
  }

  /** A client frame (or the lack of one) refused: ERROR frame where due, then the close. */
  private refuse(frame: StompFrame | undefined, r: Refusal, command = frame?.command): void {
    if (this.phase === Phase.Ended) return;
    if (r.code !== 1008 || this.policy.errorFrames) {
      const headers = ['message', r.message];
      const receipt = frame?.header('receipt');
      if (receipt !== undefined) headers.push('receipt-id', receipt);
      headers.push('content-type', 'text/plain');
      const error = writeFrame('ERROR', headers, r.message, this.fromClientParser.version);
      if (error) this.actions.sendToClient(error, false);
    }
    this.phase = Phase.Ended;
    this.actions.end({ code: r.code, reason: r.reason, command, destination: r.destination }, 'to_backend');
  }

  private clientBroke(err: StompError): void {
    this.refuse(undefined, refusal(err.kind === 'too_large' ? 1009 : 1002, err.reason, err.message));
  }

  /** The broker broke the protocol: the client gets 1014, the audit line says how. */
  private brokerBroke(detail: string): void {
    if (this.phase === Phase.Ended) return;
    this.phase = Phase.Ended;
    this.actions.end({ code: 1014, reason: 'stomp_backend_protocol_error', detail }, 'to_client');
  }
}

function connectTimedOut(inspector: StompInspector): void {
  inspector.connectTimedOut();
}

/** A subscription's key: its id; STOMP 1.0 allows none, and then the destination names it. */
function subscriptionKey(frame: StompFrame): string {
  const id = frame.header('id');
  return id !== undefined ? `id:${id}` : `destination:${frame.header('destination') ?? ''}`;
}

/* The parsers' sinks: small classes, not closures (one object each per connection). */
class ClientFrames implements StompFrameSink {
  constructor(private readonly inspector: StompInspector) {}
  onFrame(frame: StompFrame): void { this.inspector.clientFrame(frame); }
  onHeartbeat(): void { this.inspector.clientHeartbeat(); }
}

class BrokerFrames implements StompFrameSink {
  constructor(private readonly inspector: StompInspector) {}
  onFrame(frame: StompFrame): void { this.inspector.brokerFrame(frame); }
  onHeartbeat(): void { this.inspector.brokerHeartbeat(); }
}
