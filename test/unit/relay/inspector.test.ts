/**
 * The inspector machinery of the relay: the inspector is chosen by the
 * negotiated subprotocol (none, or a factory that declines: passthrough, raw
 * path kept); it sees both directions; its actions pass, rewrite, answer the
 * client alone, record an in-protocol refusal, or end the connection with a
 * code and reason after what it sent; it is told once when relaying stops.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Admission } from '../../../src/admitted.js';
import type { Channel, ChannelSink, CloseInfo } from '../../../src/channel.js';
import { Relay, type RelayOptions } from '../../../src/relay/relay.js';
import type { RelayEnd } from '../../../src/relay/end.js';
import type { Direction, InspectorActions, InspectorFactory, Refusal, Violation } from '../../../src/relay/inspector.js';

class End {
  sink: ChannelSink | null = null;
  sent: string[] = [];
  closedWith?: { code?: number; reason?: string };
  closed = false;
  masked?: boolean;
  attach(sink: ChannelSink): void { this.sink = sink; }
  send(): boolean { return true; }
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    this.sent.push(`${isBinary ? 'bin' : 'text'}${first ? '[' : ''}${data.toString()}${fin ? ']' : ''}`);
    return true;
  }
  sendOwnedFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    return this.sendFragment(data, isBinary, first, fin);
  }
  deliverMasked(on: boolean): void { this.masked = on; }
  pause(): void {}
  resume(): void {}
  close(code?: number, reason?: string): void {
    this.closed = true;
    this.closedWith = { code, reason };
  }
  terminate(): void { this.closed = true; }
  whenClosed(): void {}
}

class Client extends End {
  readonly transport = 'websocket' as const;
  readonly extensions = '';
  readonly bufferedAmount = 0;
  constructor(readonly protocol: string) { super(); }
}

interface Run {
  client: Client;
  backend: End;
  relay: Relay;
  violations: Array<[Violation, Direction, string]>;
  refusals: Array<[Refusal, Direction, string]>;
  ended: number;
  actions?: InspectorActions;
}

/** An inspector that upper-cases client text, answers `ping` itself, refuses `deny` in-protocol and ends at `bad`. */
function relayWith(protocol: string, options: Partial<RelayOptions> = {}, decline = false): Run {
  const run = { violations: [], refusals: [], ended: 0 } as unknown as Run;
  const factory: InspectorFactory = ({ actions, backendStream }) => {
    if (decline) return undefined;
    run.actions = actions;
    assert.equal(backendStream, options.backendStream === true);
    return {
      name: 'upper',
      fromClient(data, isBinary) {
        const text = data.toString();
        if (text === 'ping') return actions.sendToClient(Buffer.from('pong'), false);
        if (text === 'deny') return actions.refused({ reason: 'denied', command: 'X' });
        if (text === 'bad') {
          actions.sendToClient(Buffer.from('ERROR'), false);
          return actions.end({ code: 1008, reason: 'bad_word', command: 'X', destination: '/d' });
        }
        actions.sendToBackend(Buffer.from(text.toUpperCase()), isBinary);
      },
      fromBackend(data, isBinary, first, fin) { actions.pieceToClient(data, isBinary, first, fin); },
      end() { run.ended++; },
    };
  };
  run.client = new Client(protocol);
  run.backend = new End();
  run.relay = new Relay({
    client: run.client as unknown as Channel,
    admission: {} as Admission,
    backend: run.backend as RelayEnd,
    inspectors: new Map([['upper', factory]]),
    onViolation: (v, d, n) => { run.violations.push([v, d, n]); },
    onRefusal: (r, d, n) => { run.refusals.push([r, d, n]); },
    ...options,
  });
  run.relay.start();
  return run;
}

const CLOSED: CloseInfo = { code: 1000, reason: '', wasClean: true, initiator: 'remote' };

describe('relay inspector machinery', () => {
  it('is chosen by the negotiated subprotocol; both directions go through it; rewrites and answers', () => {
    const run = relayWith('upper');
    assert.equal(run.client.masked, undefined, 'no raw path with an inspector');
    run.client.sink?.onFragment?.(Buffer.from('hello'), false, true, true);
    run.client.sink?.onFragment?.(Buffer.from('ping'), false, true, true);
    run.backend.sink?.onFragment?.(Buffer.from('ab'), true, true, false);
    run.backend.sink?.onFragment?.(Buffer.from('c'), true, false, true);
    assert.deepEqual(run.backend.sent, ['text[HELLO]'], 'rewritten; the ping never reached the backend');
    assert.deepEqual(run.client.sent, ['text[pong]', 'bin[ab', 'binc]'], 'answered by the inspector; backend pieces streamed');
  });

  it('without an inspector for the subprotocol, or when the factory declines: passthrough on the raw path', () => {
    for (const run of [relayWith('other'), relayWith('upper', {}, true), relayWith('')]) {
      assert.equal(run.client.masked, true, 'raw masked path');
      run.client.sink?.onFragment?.(Buffer.from('hello'), true, true, true);
      assert.deepEqual(run.backend.sent, ['bin[hello]']);
    }
  });

  it('end: the client gets what was sent first, then the code and reason; the backend is closed; audited once', () => {
    const run = relayWith('upper');
    run.client.sink?.onFragment?.(Buffer.from('bad'), false, true, true);
    assert.deepEqual(run.client.sent, ['text[ERROR]']);
    assert.deepEqual(run.client.closedWith, { code: 1008, reason: 'bad_word' });
    assert.deepEqual(run.backend.closedWith, { code: 1001, reason: 'client refused' });
    assert.deepEqual(run.violations, [[{ code: 1008, reason: 'bad_word', command: 'X', destination: '/d' }, 'to_backend', 'upper']]);
    assert.equal(run.ended, 1, 'inspector told once');
    // Nothing more flows, whatever arrives or the inspector still tries.
    run.client.sink?.onFragment?.(Buffer.from('more'), false, true, true);
    run.actions?.sendToBackend(Buffer.from('late'), false);
    run.actions?.end({ code: 1011, reason: 'again' });
    assert.deepEqual(run.backend.sent, []);
    assert.equal(run.violations.length, 1);
    run.client.sink?.onClose?.(CLOSED);
    assert.equal(run.ended, 1);
  });

  it('refused: an in-protocol refusal is recorded and the connection stays', () => {
    const run = relayWith('upper');
    run.client.sink?.onFragment?.(Buffer.from('deny'), false, true, true);
    run.client.sink?.onFragment?.(Buffer.from('ok'), false, true, true);
    assert.deepEqual(run.refusals, [[{ reason: 'denied', command: 'X' }, 'to_backend', 'upper']]);
    assert.deepEqual(run.backend.sent, ['text[OK]']);
    assert.equal(run.client.closed, false);
  });

  it('the inspector is told once when either side ends or the gateway drains', () => {
    for (const stop of ['client', 'backend', 'drain', 'terminate'] as const) {
      const run = relayWith('upper');
      if (stop === 'client') run.client.sink?.onClose?.(CLOSED);
      if (stop === 'backend') run.backend.sink?.onClose?.(CLOSED);
      if (stop === 'drain') run.relay.goingAway();
      if (stop === 'terminate') run.relay.terminate();
      run.relay.goingAway();
      assert.equal(run.ended, 1, stop);
    }
  });

  it('binaryOnly (tcp text: reject): text refused with 1003 without an inspector; an inspector decides for itself', () => {
    const plain = relayWith('', { binaryOnly: true, backendStream: true });
    assert.equal(plain.client.masked, undefined);
    plain.client.sink?.onFragment?.(Buffer.from('bytes'), true, true, true);
    plain.client.sink?.onFragment?.(Buffer.from('text'), false, true, true);
    assert.deepEqual(plain.backend.sent, ['bin[bytes]']);
    assert.deepEqual(plain.client.closedWith, { code: 1003, reason: 'text_not_allowed' });
    assert.deepEqual(plain.violations.map(([v, d, n]) => [v.reason, d, n]), [['text_not_allowed', 'to_backend', 'relay']]);

    const inspected = relayWith('upper', { binaryOnly: true, backendStream: true });
    inspected.client.sink?.onFragment?.(Buffer.from('text'), false, true, true);
    assert.deepEqual(inspected.backend.sent, ['text[TEXT]']);
    assert.equal(inspected.client.closed, false);
  });
});
