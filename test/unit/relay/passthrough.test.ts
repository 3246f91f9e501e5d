/**
 * The relay's raw frame path: a passthrough relay (no inspectors) asks the
 * client for binary pieces still masked and hands them, with their key, to a
 * backend that takes owned pieces; with an inspector, or a backend that does
 * not take owned pieces, the plain path is kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Admission } from '../../../src/admitted.js';
import type { Channel, ChannelSink } from '../../../src/channel.js';
import { Relay } from '../../../src/relay/relay.js';
import type { RelayEnd } from '../../../src/relay/end.js';
import type { InspectorFactory } from '../../../src/relay/inspector.js';

class FakeClient implements Partial<Channel> {
  readonly transport = 'websocket' as const;
  protocol = '';
  readonly extensions = '';
  readonly bufferedAmount = 0;
  closed = false;
  sink: ChannelSink | null = null;
  masked: boolean | undefined;
  /** Set while a piece is being delivered, as the WebSocket transport does. */
  pieceMask: Buffer | null = null;
  paused = 0;
  resumed = 0;
  deliverMasked(on: boolean): void {
    assert.equal(this.sink, null, 'asked before attach');
    this.masked = on;
  }
  attach(sink: ChannelSink): void { this.sink = sink; }
  whenClosed(): void {}
  send(): boolean { return true; }
  sendFragment(): boolean { return true; }
  pause(): void { this.paused++; }
  resume(): void { this.resumed++; }
  close(): void { this.closed = true; }
  terminate(): void { this.closed = true; }
  deliver(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null): void {
    this.pieceMask = mask;
    this.sink?.onFragment?.(data, isBinary, first, fin);
    this.pieceMask = null;
  }
}

class FakeBackend implements RelayEnd {
  closed = false;
  sink: ChannelSink | null = null;
  plain: string[] = [];
  owned: string[] = [];
  accept = true;
  attach(sink: ChannelSink): void { this.sink = sink; }
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    this.plain.push(`${data.toString('hex')} ${isBinary} ${first} ${fin}`);
    return this.accept;
  }
  pause(): void {}
  resume(): void {}
  close(): void { this.closed = true; }
  terminate(): void { this.closed = true; }
}

class OwningBackend extends FakeBackend {
  sendOwnedFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null): boolean {
    this.owned.push(`${data.toString('hex')} ${isBinary} ${first} ${fin} ${mask === null ? 'plain' : mask.toString('hex')}`);
    return this.accept;
  }
}

function relay(client: FakeClient, backend: RelayEnd, inspectors: Map<string, InspectorFactory> = new Map()): Relay {
  const r = new Relay({ client: client as unknown as Channel, admission: {} as Admission, backend, inspectors });
  r.start();
  return r;
}

describe('relay raw frame path', () => {
  it('passthrough: binary pieces go to the backend still masked, with the key read during delivery', () => {
    const client = new FakeClient();
    const backend = new OwningBackend();
    relay(client, backend);
    assert.equal(client.masked, true);
    client.deliver(Buffer.from('0102', 'hex'), true, true, false, Buffer.from('aabbccdd', 'hex'));
    client.deliver(Buffer.from('03', 'hex'), true, false, true, Buffer.from('bbccddaa', 'hex'));
    client.deliver(Buffer.from('hi'), false, true, true, null);
    assert.deepEqual(backend.owned, [
      '0102 true true false aabbccdd',
      '03 true false true bbccddaa',
      '6869 false true true plain',
    ]);
    assert.deepEqual(backend.plain, []);
  });

  it('passthrough keeps backpressure: a full backend pauses the client, its drain resumes it', () => {
    const client = new FakeClient();
    const backend = new OwningBackend();
    relay(client, backend);
    backend.accept = false;
    client.deliver(Buffer.from('01', 'hex'), true, true, true, Buffer.from('00000000', 'hex'));
    client.deliver(Buffer.from('02', 'hex'), true, true, true, Buffer.from('00000000', 'hex'));
    assert.equal(client.paused, 1);
    backend.sink?.onDrain?.();
    assert.equal(client.resumed, 1);
  });

  it('with an inspector: plain pieces, the inspector sees every one, the backend copies', () => {
    const client = new FakeClient();
    const backend = new OwningBackend();
    const seen: string[] = [];
    const spy: InspectorFactory = ({ actions }) => ({
      name: 'spy',
      fromClient(data, isBinary, first, fin) { seen.push(`to_backend ${data.toString()}`); actions.pieceToBackend(data, isBinary, first, fin); },
      fromBackend(data, isBinary, first, fin) { seen.push(`to_client ${data.toString()}`); actions.pieceToClient(data, isBinary, first, fin); },
      end() {},
    });
    client.protocol = 'spy';
    relay(client, backend, new Map([['spy', spy]]));
    assert.equal(client.masked, undefined, 'never asked for masked pieces');
    client.deliver(Buffer.from('a'), false, true, false, null);
    client.deliver(Buffer.from('b'), false, false, true, null);
    backend.sink?.onFragment?.(Buffer.from('c'), false, true, true);
    assert.deepEqual(seen, ['to_backend a', 'to_backend b', 'to_client c']);
    assert.deepEqual(backend.plain, ['61 false true false', '62 false false true']);
    assert.deepEqual(backend.owned, []);
  });

  it('a backend without owned pieces (a tcp link) keeps the plain path', () => {
    const client = new FakeClient();
    const backend = new FakeBackend();
    relay(client, backend);
    assert.equal(client.masked, undefined);
    client.deliver(Buffer.from('x'), true, true, true, null);
    assert.deepEqual(backend.plain, ['78 true true true']);
  });

  describe('permessage-deflate on both legs', () => {
    class CompressingClient extends FakeClient {
      compressedAsked: boolean | undefined;
      pieceCompressed = false;
      sentAsIs: string[] = [];
      deliverCompressed(on: boolean): void {
        assert.equal(this.sink, null, 'asked before attach');
        this.compressedAsked = on;
      }
      sendOwnedFragment(data: Buffer, _isBinary: boolean, _first: boolean, _fin: boolean, mask: Buffer | null, compressed?: boolean): boolean {
        this.sentAsIs.push(`${data.toString('hex')} ${mask === null ? 'plain' : 'masked'} ${compressed === true ? 'compressed' : 'as-is'}`);
        return true;
      }
    }
    class CompressingBackend extends OwningBackend {
      compressedAsked: boolean | undefined;
      pieceCompressed = false;
      deliverCompressed(on: boolean): void { this.compressedAsked = on; }
      override sendOwnedFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed?: boolean): boolean {
        this.owned.push(`${data.toString('hex')} ${compressed === true ? 'compressed' : 'as-is'}`);
        return this.accept;
      }
    }
    const start = (compression: { toBackend: 'pass' | 'recompress' | 'plain'; toClient: 'pass' | 'recompress' }, inspector?: InspectorFactory) => {
      const client = new CompressingClient();
      const backend = new CompressingBackend();
      if (inspector) client.protocol = 'spy';
      const inspectors = new Map(inspector ? [['spy', inspector]] : []);
      new Relay({ client: client as unknown as Channel, admission: {} as Admission, backend, inspectors, compression }).start();
      return { client, backend };
    };

    it('pass both ways: compressed pieces are asked for on both sides and sent as they came', () => {
      const { client, backend } = start({ toBackend: 'pass', toClient: 'pass' });
      assert.equal(client.compressedAsked, true);
      assert.equal(backend.compressedAsked, true);
      client.pieceCompressed = true;
      client.deliver(Buffer.from('aa', 'hex'), false, true, true, null);
      assert.deepEqual(backend.owned, ['aa compressed']);
      backend.pieceCompressed = true;
      backend.sink?.onFragment?.(Buffer.from('bb', 'hex'), true, true, true);
      assert.deepEqual(client.sentAsIs, ['bb plain compressed']);
    });

    it('recompress: plain pieces through sendFragment, where the sending side compresses by its own agreement', () => {
      const { client, backend } = start({ toBackend: 'recompress', toClient: 'recompress' });
      assert.equal(client.compressedAsked, undefined);
      assert.equal(backend.compressedAsked, undefined);
      client.deliver(Buffer.from('cc', 'hex'), true, true, true, null);
      assert.deepEqual(backend.plain, ['cc true true true']);
      assert.deepEqual(backend.owned, []);
    });

    it('an inspector turns passing off: it sees plain payload both ways', () => {
      const seen: string[] = [];
      const spy: InspectorFactory = () => ({
        name: 'spy',
        fromClient(data) { seen.push(`to_backend ${data.toString('hex')}`); },
        fromBackend(data) { seen.push(`to_client ${data.toString('hex')}`); },
        end() {},
      });
      const { client, backend } = start({ toBackend: 'pass', toClient: 'pass' }, spy);
      assert.equal(client.compressedAsked, undefined);
      assert.equal(backend.compressedAsked, undefined);
      client.deliver(Buffer.from('dd', 'hex'), true, true, true, null);
      backend.sink?.onFragment?.(Buffer.from('ee', 'hex'), true, true, true);
      assert.deepEqual(seen, ['to_backend dd', 'to_client ee']);
    });
  });
});
