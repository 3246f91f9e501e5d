/**
 * The relay: joins a client Channel to a backend link and carries messages
 * both ways, fragment by fragment, as they arrive — a large message crosses
 * the gateway without ever being assembled. Backpressure (`backpressure.ts`)
 * runs end to end; an inspector (`inspector.ts`, chosen by the negotiated
 * subprotocol) takes every piece both ways and decides what goes on; the end
 * of one side is carried to the other (`close-codes.ts`).
 *
 * A passthrough relay between a WebSocket client and a WebSocket backend
 * forwards client frames raw: binary payload arrives still masked with the
 * client's key (the client's parser has checked everything else) and the
 * backend's writer re-masks it in place, in one pass, with its own key; text
 * arrives unmasked (it was UTF-8 checked) and is masked in place. No copy,
 * one XOR pass instead of two. With an inspector, it sees plain payload
 * and the backend copies what it sends to mask it.
 *
 * With permessage-deflate on both legs and no inspector, a direction whose
 * two agreements are compatible (`compression`, decided by the service) lets
 * compressed frames through as they are: the receiving connection still
 * inflates each piece to check it (size, UTF-8) and drops the plain bytes;
 * the sending one writes the compressed payload with RSV1 instead of
 * compressing again. Otherwise the receiving connection inflates and the
 * sending one compresses by its own agreement. Inspectors always see plain payload.
 */
import type { Admission } from '../admitted.js';
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
import { Backpressure } from './backpressure.js';
import { backendCodeForClientEnd, clientCodeForBackendEnd } from './close-codes.js';
import type { RelayEnd } from './end.js';
import { NO_INSPECTORS, type Direction, type Inspector, type InspectorActions, type InspectorTable, type Refusal, type Violation } from './inspector.js';

export interface RelayOptions {
  client: Channel;
  /** The client's admission (inspectors are built for it). */
  admission: Admission;
  backend: RelayEnd;
  /** When the client vanishes (1006), drop the backend link instead of closing it with 1001. */
  dropBackendWhenClientVanishes?: boolean;
  /** Protocol inspectors by negotiated subprotocol. */
  inspectors?: InspectorTable;
  /** The backend is a byte stream (tcp), for inspectors. */
  backendStream?: boolean;
  /** Refuse text messages from the client with 1003 (the tcp service's `text: reject`), unless an inspector handles the connection. */
  binaryOnly?: boolean;
  /** Traffic refused, ending the connection (for the audit trail). */
  onViolation?(violation: Violation, direction: Direction, inspector: string): void;
  /** An inspector refused a request in-protocol; the connection stays (for the audit trail). */
  onRefusal?(refusal: Refusal, direction: Direction, inspector: string): void;
  /** The backend ended the connection without a close of its own (reset, vanished, bad data): the client gets 1014. */
  onBackendFailed?(info: CloseInfo): void;
  /** Both sides have closed. */
  onEnd?(summary: RelaySummary): void;
  /**
   * permessage-deflate, per direction, when the client's leg has it: `pass`
   * (compressed frames go through as they are), `recompress` (the sending
   * side compresses by its own agreement), `plain` (the backend's leg is not
   * compressed). Ignored with an inspector: it sees plain payload.
   */
  compression?: { toBackend: 'pass' | 'recompress' | 'plain'; toClient: 'pass' | 'recompress' };
}

export interface RelaySummary {
  client?: CloseInfo;
  backend?: CloseInfo;
  bytesToBackend: number;
  bytesToClient: number;
}

/** Names the relay's own policy (not an inspector's) in violations. */
export const RELAY_POLICY = 'relay';

/** The tcp service's text policy (`binaryOnly`): the one check a relay makes without an inspector. */
const TEXT_REFUSED: Violation = Object.freeze({ code: 1003, reason: 'text_not_allowed' });

export class Relay extends Backpressure implements InspectorActions {
  private readonly inspector?: Inspector;
  private clientInfo?: CloseInfo;
  private backendInfo?: CloseInfo;
  private bytesToBackend = 0;
  private bytesToClient = 0;
  private ended = false;

  constructor(private readonly options: RelayOptions) {
    super(options.client, options.backend);
    const protocol = options.client.protocol;
    const factory = protocol === '' ? undefined : (options.inspectors ?? NO_INSPECTORS).get(protocol);
    this.inspector = factory?.({ admission: options.admission, actions: this, backendStream: options.backendStream === true });
  }

  /** Attach both sides; traffic flows from here. */
  start(): void {
    const client = this.client;
    const backend = this.backend;
    const uninspected = this.inspector === undefined;
    const compression = this.options.compression;
    // Before attach: the first piece delivered may be one the peer sent with its upgrade.
    if (uninspected && compression?.toClient === 'pass' && backend.deliverCompressed !== undefined && client.sendOwnedFragment !== undefined) {
      backend.deliverCompressed(true);
      backend.attach(new PassingBackendSink(this));
    } else {
      backend.attach(new BackendSink(this));
    }
    if (uninspected && !this.options.binaryOnly && client.deliverMasked !== undefined && backend.sendOwnedFragment !== undefined && compression?.toBackend !== 'recompress') {
      client.deliverMasked(true);
      if (compression?.toBackend === 'pass') client.deliverCompressed?.(true);
      client.attach(new PassthroughClientSink(this));
    } else {
      client.attach(new ClientSink(this));
    }
  }

  /** Gateway draining: both sides get 1001, the client first so its code is not rewritten. */
  goingAway(): void {
    if (this.ending) return;
    this.stopRelaying();
    if (!this.client.closed) this.client.close(1001, 'going away');
    if (!this.backend.closed) this.backend.close(1001, 'going away');
  }

  /** Drop both sides at once (drain grace period over). */
  terminate(): void {
    this.stopRelaying();
    if (!this.client.closed) this.client.terminate();
    if (!this.backend.closed) this.backend.terminate();
  }

  /** From ClientSink: a piece of a client message. */
  fromClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    if (this.inspector !== undefined) return this.inspector.fromClient(data, isBinary, first, fin);
    if (first && !isBinary && this.options.binaryOnly) return this.end(TEXT_REFUSED, 'to_backend', RELAY_POLICY);
    this.bytesToBackend += data.length;
    this.toBackend(data, isBinary, first, fin);
  }

  /**
   * From PassthroughClientSink (no inspectors; the backend takes owned
   * pieces): a piece of a client message, binary ones still masked.
   */
  fromClientRaw(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    // Read during the delivery: the key and the flag are only valid inside this call.
    const mask = this.client.pieceMask ?? null;
    const compressed = this.client.pieceCompressed === true;
    if (this.ending) return;
    this.bytesToBackend += data.length;
    this.toBackendOwned(data, isBinary, first, fin, mask, compressed);
  }

  /** From PassingBackendSink (no inspectors, compressed frames passing): a piece of a backend message as it came. */
  fromBackendAsIs(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    const compressed = this.backend.pieceCompressed === true;
    if (this.ending) return;
    this.bytesToClient += data.length;
    this.toClientAsIs(data, isBinary, first, fin, compressed);
  }

  /** From BackendSink: a piece of a backend message. */
  fromBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    if (this.inspector !== undefined) return this.inspector.fromBackend(data, isBinary, first, fin);
    this.bytesToClient += data.length;
    this.toClient(data, isBinary, first, fin);
  }

  /* InspectorActions: what the inspector decided. */

  sendToBackend(data: Buffer, isBinary: boolean): void {
    this.pieceToBackend(data, isBinary, true, true);
  }

  sendToClient(data: Buffer, isBinary: boolean): void {
    this.pieceToClient(data, isBinary, true, true);
  }

  pieceToBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    this.bytesToBackend += data.length;
    this.toBackend(data, isBinary, first, fin);
  }

  pieceToClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.ending) return;
    this.bytesToClient += data.length;
    this.toClient(data, isBinary, first, fin);
  }

  refused(refusal: Refusal, direction: Direction = 'to_backend'): void {
    if (!this.ending) this.options.onRefusal?.(refusal, direction, this.inspector?.name ?? RELAY_POLICY);
  }

  /** Traffic broke the rules: the client gets the violation's code (after what was sent to it), the backend goes. */
  end(violation: Violation, direction: Direction = 'to_backend', by = this.inspector?.name ?? RELAY_POLICY): void {
    if (this.ending) return;
    this.stopRelaying();
    this.options.onViolation?.(violation, direction, by);
    this.client.close(violation.code, violation.reason);
    if (!this.backend.closed) this.backend.close(1001, direction === 'to_backend' ? 'client refused' : 'backend refused');
  }

  /** From here on nothing more is relayed; the inspector is told once. */
  private stopRelaying(): void {
    if (this.ending) return;
    this.ending = true;
    this.inspector?.end();
  }

  /** From ClientSink: the client channel has ended. */
  clientClosed(info: CloseInfo): void {
    this.clientInfo = info;
    if (!this.ending) {
      this.stopRelaying();
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
      let { code, reason } = clientCodeForBackendEnd(info);
      // A normal end is the inspector's to judge: its protocol may say the broker had no business ending here.
      const unexpected = code === 1000 ? this.inspector?.backendEnded?.() : undefined;
      this.stopRelaying();
      if (unexpected !== undefined) {
        this.options.onViolation?.(unexpected, 'to_client', this.inspector!.name);
        ({ code, reason } = unexpected);
      } else if (code === 1014) {
        this.options.onBackendFailed?.(info);
      }
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

/** The backend side of a relay passing compressed frames to the client as they are. */
class PassingBackendSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly relay: Relay) {}
  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void { this.relay.fromBackendAsIs(data, isBinary, first, fin); }
  onDrain(): void { this.relay.backendDrained(); }
  onClose(info: CloseInfo): void { this.relay.backendClosed(info); }
}

class BackendSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly relay: Relay) {}
  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void { this.relay.fromBackend(data, isBinary, first, fin); }
  onDrain(): void { this.relay.backendDrained(); }
  onClose(info: CloseInfo): void { this.relay.backendClosed(info); }
}
