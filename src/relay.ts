/**
 * The relay: joins a client Channel to a backend link and carries messages
 * both ways, fragment by fragment, as they arrive — a large message crosses
 * the gateway without ever being assembled.
 *
 * Backpressure runs end to end: when one side's `sendFragment` reports "full"
 * the relay pauses the other side (which stops reading its socket, so TCP
 * flow control reaches the far peer), and resumes it on the drain signal.
 * Memory per connection is therefore bounded by the two high-water marks plus
 * one socket read, whatever the peers do.
 *
 * Inspectors (STOMP, MQTT, ...) plug in by negotiated subprotocol through
 * `registerInspector`; with none registered the relay is a passthrough. A
 * service may add its own (the tcp service's text policy is one).
 *
 * A passthrough relay between a WebSocket client and a WebSocket backend
 * forwards client frames raw: binary payload arrives still masked with the
 * client's key (the client's parser has checked everything else) and the
 * backend's writer re-masks it in place, in one pass, with its own key; text
 * arrives unmasked (it was UTF-8 checked) and is masked in place. No copy,
 * one XOR pass instead of two. With an inspector, inspectors see plain
 * payload as before and the backend copies it to mask it.
 */
import type { Admission } from './admitted.js';
import type { Channel, ChannelSink, CloseInfo } from './channel.js';

/** One side of a relay. A Channel is one; a backend link adapts to the same shape. */
export interface RelayEnd {
  readonly closed: boolean;
  attach(sink: ChannelSink): void;
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean;
  /**
   * Optional: like `sendFragment`, but `data` is handed over (the relay never
   * reads it again) and is masked with `mask`, or plain when null; the end
   * re-masks it in place for its own wire instead of copying it.
   */
  sendOwnedFragment?(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null): boolean;
  pause(): void;
  resume(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

type OwnedRelayEnd = RelayEnd & Required<Pick<RelayEnd, 'sendOwnedFragment'>>;

export type Direction = 'to_backend' | 'to_client';

/** What an inspector answers when traffic breaks its rules: the close code for the client and a stable reason. */
export interface Violation {
  code: number;
  /** Stable reason code for the audit trail and the close frame, e.g. `text_not_allowed`. */
  reason: string;
}

/**
 * Looks at each piece of each message as it passes. Returning a Violation
 * ends the connection: the client gets `code`, the backend is closed.
 */
export interface Inspector {
  readonly name: string;
  inspect(direction: Direction, data: Buffer, isBinary: boolean, first: boolean, fin: boolean): Violation | undefined;
}

export type InspectorFactory = (admission: Admission) => Inspector;

const inspectorsByProtocol = new Map<string, InspectorFactory>();

/** Plug an inspector in for a negotiated subprotocol (called once at start-up by the inspector's module). */
export function registerInspector(protocol: string, factory: InspectorFactory): void {
  inspectorsByProtocol.set(protocol, factory);
}

/** Shared by every passthrough relay: no array per connection. */
const NO_INSPECTORS: readonly Inspector[] = Object.freeze([]);

/** The inspectors for a connection, chosen by its negotiated subprotocol; none → passthrough. */
export function inspectorsFor(admission: Admission, protocol: string): readonly Inspector[] {
  const factory = protocol === '' ? undefined : inspectorsByProtocol.get(protocol);
  return factory ? [factory(admission)] : NO_INSPECTORS;
}

/** Close codes a peer may put on the wire (RFC 6455 §7.4, IANA registry). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/**
 * The code the client gets when the backend ended. A close the backend sent
 * is carried across (1005 "no code" becomes 1000); anything else — the
 * backend vanished, reset, or sent bad data and our codec closed it — is 1014.
 */
export function clientCodeForBackendEnd(info: CloseInfo): { code: number; reason: string } {
  if (info.initiator === 'remote') {
    if (info.code === 1005) return { code: 1000, reason: info.reason };
    if (isSendableCloseCode(info.code)) return { code: info.code, reason: info.reason };
  }
  return { code: 1014, reason: 'bad gateway' };
}

/**
 * The code the backend gets when the client ended: a close the client sent is
 * carried across (1005 → 1000); a client that vanished or was closed by the
 * gateway is "going away", 1001.
 */
export function backendCodeForClientEnd(info: CloseInfo): { code: number; reason: string } {
  if (info.initiator === 'remote') {
    if (info.code === 1005) return { code: 1000, reason: info.reason };
    if (isSendableCloseCode(info.code)) return { code: info.code, reason: info.reason };
  }
  return { code: 1001, reason: 'client gone' };
}

export interface RelayOptions {
  client: Channel;
  /** The client's admission (inspectors are built for it). */
  admission: Admission;
  backend: RelayEnd;
  /** When the client vanishes (1006), drop the backend link instead of closing it with 1001. */
  dropBackendWhenClientVanishes?: boolean;
  /** Extra inspectors of the service, run before the subprotocol's. */
  inspectors?: readonly Inspector[];
  /** An inspector refused traffic (for the audit trail). */
  onViolation?(violation: Violation, direction: Direction, inspector: string): void;
  /** The backend ended the connection without a close of its own (reset, vanished, bad data): the client gets 1014. */
  onBackendFailed?(info: CloseInfo): void;
  /** Both sides have closed. */
  onEnd?(summary: RelaySummary): void;
}

export interface RelaySummary {
  client?: CloseInfo;
  backend?: CloseInfo;
  bytesToBackend: number;
  bytesToClient: number;
}

export class Relay {
  private readonly client: Channel;
  private readonly backend: RelayEnd;
  private readonly inspectors: readonly Inspector[];
  private clientPaused = false;
  private backendPaused = false;
  /** Set once either side has ended: from then on nothing more is relayed. */
  private ending = false;
  private clientInfo?: CloseInfo;
  private backendInfo?: CloseInfo;
  private bytesToBackend = 0;
  private bytesToClient = 0;
  private ended = false;

  constructor(private readonly options: RelayOptions) {
    this.client = options.client;
    this.backend = options.backend;
    const own = options.inspectors ?? NO_INSPECTORS;
    const byProtocol = inspectorsFor(options.admission, options.client.protocol);
    this.inspectors = byProtocol.length === 0 ? own : own.length === 0 ? byProtocol : [...own, ...byProtocol];
  }

  /** Attach both sides; traffic flows from here. */
  start(): void {
    this.backend.attach(new BackendSink(this));
    const client = this.client;
    if (this.inspectors.length === 0 && client.deliverMasked !== undefined && this.backend.sendOwnedFragment !== undefined) {
      // Before attach: the first piece delivered may be one the client sent with its upgrade.
      client.deliverMasked(true);
      client.attach(new PassthroughClientSink(this));
    } else {
      client.attach(new ClientSink(this));
    }
  }

  /** Gateway draining: both sides get 1001, the client first so its code is not rewritten. */
  goingAway(): void {
    if (this.ending) return;
    this.ending = true;
    if (!this.client.closed) this.client.close(1001, 'going away');
    if (!this.backend.closed) this.backend.close(1001, 'going away');
  }

  /** Drop both sides at once (drain grace period over). */
  terminate(): void {
    this.ending = true;
    if (!this.client.closed) this.client.terminate();
    if (!this.backend.closed) this.backend.terminate();
  }

  /** From ClientSink: a piece of a client message. */
  fromClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    if (this.inspectors.length > 0 && this.inspectPiece('to_backend', data, isBinary, first, fin)) return;
    this.bytesToBackend += data.length;
    if (!this.backend.sendFragment(data, isBinary, first, fin) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  /**
   * From PassthroughClientSink (no inspectors; the backend takes owned
   * pieces): a piece of a client message, binary ones still masked.
   */
  fromClientRaw(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    // Read during the delivery: the key is only valid inside this call.
    const mask = this.client.pieceMask ?? null;
    if (this.ending) return;
    this.bytesToBackend += data.length;
    if (!(this.backend as OwnedRelayEnd).sendOwnedFragment(data, isBinary, first, fin, mask) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  /** From BackendSink: a piece of a backend message. */
  fromBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    if (this.inspectors.length > 0 && this.inspectPiece('to_client', data, isBinary, first, fin)) return;
    this.bytesToClient += data.length;
    if (!this.client.sendFragment(data, isBinary, first, fin) && !this.backendPaused) {
      this.backendPaused = true;
      this.backend.pause();
    }
  }

  /** The backend's outbound buffer drained: read from the client again. */
  backendDrained(): void {
    if (this.clientPaused && !this.ending) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  /** The client's outbound buffer drained: read from the backend again. */
  clientDrained(): void {
    if (this.backendPaused && !this.ending) {
      this.backendPaused = false;
      this.backend.resume();
    }
  }

  /** true when the piece was refused (and the connection is being closed). */
  private inspectPiece(direction: Direction, data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    for (const inspector of this.inspectors) {
      const violation = inspector.inspect(direction, data, isBinary, first, fin);
      if (violation) {
        this.ending = true;
        this.options.onViolation?.(violation, direction, inspector.name);
        this.client.close(violation.code, violation.reason);
        if (!this.backend.closed) this.backend.close(1001, 'client refused');
        return true;
      }
    }
    return false;
  }

  /** From ClientSink: the client channel has ended. */
  clientClosed(info: CloseInfo): void {
    this.clientInfo = info;
    if (!this.ending) {
      this.ending = true;
      if (!this.backend.closed) {
        if ((info.initiator === 'transport' || info.code === 1006) && this.options.dropBackendWhenClientVanishes) {
          // A byte-stream backend has no "going away": the client vanished, so the link goes at once.
          this.backend.terminate();
        } else {
          const { code, reason } = backendCodeForClientEnd(info);
          this.backend.close(code, reason);
        }
      }
    }
    this.maybeEnd();
  }

  /** From BackendSink: the backend link has ended. */
  backendClosed(info: CloseInfo): void {
    this.backendInfo = info;
    if (!this.ending) {
      this.ending = true;
      const { code, reason } = clientCodeForBackendEnd(info);
      if (code === 1014) this.options.onBackendFailed?.(info);
      if (!this.client.closed) this.client.close(code, reason);
    }
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (this.ended || this.clientInfo === undefined || this.backendInfo === undefined) return;
    this.ended = true;
    this.options.onEnd?.({
      client: this.clientInfo,
      backend: this.backendInfo,
      bytesToBackend: this.bytesToBackend,
      bytesToClient: this.bytesToClient,
    });
  }
}

/*
 * The two sinks are tiny classes rather than closures: one small object per
 * side instead of four closures, which matters at tens of thousands of idle
 * proxied connections.
 */
class ClientSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly relay: Relay) {}
  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void { this.relay.fromClient(data, isBinary, first, fin); }
  onDrain(): void { this.relay.clientDrained(); }
  onClose(info: CloseInfo): void { this.relay.clientClosed(info); }
}

/** The client side of a passthrough relay to an end that takes owned pieces. */
class PassthroughClientSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly relay: Relay) {}
  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void { this.relay.fromClientRaw(data, isBinary, first, fin); }
  onDrain(): void { this.relay.clientDrained(); }
  onClose(info: CloseInfo): void { this.relay.clientClosed(info); }
}

class BackendSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly relay: Relay) {}
  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void { this.relay.fromBackend(data, isBinary, first, fin); }
  onDrain(): void { this.relay.backendDrained(); }
  onClose(info: CloseInfo): void { this.relay.backendClosed(info); }
}
