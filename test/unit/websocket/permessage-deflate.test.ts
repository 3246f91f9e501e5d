import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compressionSettingsSchema, type CompressionSettings } from '../../../src/config/compression.js';
import { HandshakeError } from '../../../src/websocket/handshake.js';
import {
  acceptDeflateResponse, backendOffer, negotiateDeflate, passthroughCompatibility,
} from '../../../src/websocket/permessage-deflate.js';

const DEFAULTS = compressionSettingsSchema.parse({});
const settings = (over: Partial<Record<keyof CompressionSettings, unknown>> = {}): CompressionSettings => compressionSettingsSchema.parse(over);

function header(offer: string, s: CompressionSettings = DEFAULTS): string | null {
  return negotiateDeflate(offer, s)?.header ?? null;
}

describe('negotiateDeflate (server role, RFC 7692 §5, §7.1)', () => {
  it('accepts the plain offer, saying neither side keeps a context (the defaults)', () => {
    assert.equal(header('permessage-deflate'), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });

  it('answers what browsers and libraries offer', () => {
    // Chromium / ws / python websockets
    assert.equal(header('permessage-deflate; client_max_window_bits'), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.equal(header('permessage-deflate; server_max_window_bits=12; client_max_window_bits=11'),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11');
  });

  it('honours the service settings: windows, context takeover', () => {
    const s = settings({ server_max_window_bits: 10, client_max_window_bits: 11, server_no_context_takeover: false, client_no_context_takeover: false });
    assert.equal(header('permessage-deflate; client_max_window_bits', s), 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=11');
    const o = negotiateDeflate('permessage-deflate; client_max_window_bits', s);
    assert.ok(o);
    assert.equal(o.deflateWindowBits, 10);
    assert.equal(o.inflateWindowBits, 11);
    assert.equal(o.keepDeflater, true);
    assert.equal(o.keepInflater, true);
  });

  it('honours a client\'s request: server_no_context_takeover and a smaller server window', () => {
    const s = settings({ server_no_context_takeover: false, client_no_context_takeover: false });
    const o = negotiateDeflate('permessage-deflate; server_no_context_takeover; server_max_window_bits=9', s);
    assert.ok(o);
    assert.equal(o.header, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9');
    assert.equal(o.keepDeflater, false);
    assert.equal(o.deflateWindowBits, 9);
  });

  it('declines an offer it cannot honour and takes the next one (several offers in one header)', () => {
    // server_max_window_bits=8: zlib cannot compress with a raw 256-byte window.
    assert.equal(header('permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits'),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.equal(header('permessage-deflate; server_max_window_bits=8'), null);
    // A service that limits the client's window declines a client that cannot promise it.
    const s = settings({ client_max_window_bits: 10 });
    assert.equal(header('permessage-deflate', s), null);
    assert.equal(header('permessage-deflate, permessage-deflate; client_max_window_bits=12', s),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10');
  });

  for (const [offer, why] of [
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', 'a repeated parameter'],
    ['permessage-deflate; client_max_window_bits; client_max_window_bits=10', 'a repeated parameter (with and without value)'],
    ['permessage-deflate; foo', 'an unknown parameter'],
    ['permessage-deflate; server_max_window_bits', 'server_max_window_bits without a value'],
    ['permessage-deflate; server_max_window_bits=16', 'a window above 15'],
    ['permessage-deflate; server_max_window_bits=7', 'a window below 8'],
    ['permessage-deflate; server_max_window_bits=010', 'a leading zero'],
    ['permessage-deflate; client_max_window_bits=abc', 'a value that is not a number'],
    ['permessage-deflate; server_no_context_takeover=1', 'a value on a flag'],
    ['x-webkit-deflate-frame', 'another extension'],
  ]) {
    it(`declines an offer with ${why} (§5: MUST decline), the connection opens uncompressed`, () => {
      assert.equal(header(offer), null);
      // ... and a valid offer after it is still taken.
      assert.notEqual(header(`${offer}, permessage-deflate`), null);
    });
  }

  for (const bad of ['permessage-deflate; =1', 'permessage-deflate; a="1', 'permessage-deflate;;', ';permessage-deflate', 'permessage-deflate x']) {
    it(`declines every offer of the malformed header ${JSON.stringify(bad)} (a handshake never fails because of an offer)`, () => {
      assert.equal(negotiateDeflate(bad, DEFAULTS), null);
      assert.equal(negotiateDeflate(`permessage-deflate, ${bad}`, DEFAULTS), null, 'not even a valid offer before the malformed part');
    });
  }

  it('declines every offer of a header over its limits (16 offers, 4 KiB)', () => {
    assert.equal(negotiateDeflate(Array.from({ length: 17 }, () => 'permessage-deflate').join(', '), DEFAULTS), null);
    assert.notEqual(negotiateDeflate(Array.from({ length: 16 }, () => 'permessage-deflate').join(', '), DEFAULTS), null);
    assert.equal(negotiateDeflate(`permessage-deflate, x; a=${'b'.repeat(5000)}`, DEFAULTS), null);
  });

  it('without a header there is nothing to negotiate', () => {
    assert.equal(negotiateDeflate(undefined, DEFAULTS), null);
  });

  it('shares one options object per agreement (no object per connection)', () => {
    assert.equal(negotiateDeflate('permessage-deflate', DEFAULTS), negotiateDeflate('permessage-deflate', DEFAULTS));
  });
});

describe('backend offer and response (client role, §5.1, §7.1)', () => {
  const clientLeg = negotiateDeflate('permessage-deflate; client_max_window_bits', DEFAULTS);
  assert.ok(clientLeg);
  const offer = backendOffer(clientLeg, DEFAULTS);

  it('offers the backend what the client leg agreed', () => {
    assert.equal(offer.header, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits, '
      + 'permessage-deflate; client_no_context_takeover; client_max_window_bits', 'then a second offer that asks nothing of the backend\'s compressor');
  });

  it('asks nothing a backend could refuse with one offer only when the client leg asked nothing either', () => {
    const takeover = { ...DEFAULTS, server_no_context_takeover: false, client_no_context_takeover: false };
    const leg = negotiateDeflate('permessage-deflate; client_max_window_bits', takeover);
    assert.ok(leg);
    assert.equal(backendOffer(leg, takeover).header, 'permessage-deflate; client_max_window_bits');
  });

  it('reads a response that fits only the second offer by it: the backend keeps its context, frames toward the client are compressed again', () => {
    const o = acceptDeflateResponse('permessage-deflate; client_no_context_takeover', offer);
    assert.ok(o);
    assert.equal(o.keepInflater, true, 'the backend may refer to earlier messages');
    assert.deepEqual(passthroughCompatibility(clientLeg, o), { toBackend: true, toClient: false });
  });

  it('accepts a response within the offer and reads it from the client\'s side', () => {
    const o = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12', offer);
    assert.ok(o);
    assert.equal(o.deflateWindowBits, 12);
    assert.equal(o.inflateWindowBits, 15);
    assert.equal(o.keepInflater, false);
    assert.equal(acceptDeflateResponse(undefined, offer), null, 'a backend may decline');
  });

  for (const [response, why] of [
    ['x-other', 'an extension we did not offer'],
    ['permessage-deflate, permessage-deflate', 'two extensions'],
    ['permessage-deflate; server_no_context_takeover; foo', 'an unknown parameter'],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', 'a repeated parameter'],
    ['permessage-deflate; server_no_context_takeover; client_max_window_bits', 'client_max_window_bits without a value'],
    ['permessage-deflate; server_no_context_takeover; =', 'a malformed header'],
  ]) {
    it(`fails the backend handshake (502 backend_bad_extension) on ${why}`, () => {
      assert.throws(() => acceptDeflateResponse(response, offer), (e: unknown) => e instanceof HandshakeError && e.status === 502 && e.reason === 'backend_bad_extension');
    });
  }

  it('reads a server window above the one asked for as the acceptance of the second offer (frames toward the client compressed again)', () => {
    const small = negotiateDeflate('permessage-deflate; server_max_window_bits=10', DEFAULTS);
    assert.ok(small);
    const o = backendOffer(small, DEFAULTS);
    assert.match(o.header, /^permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits, permessage-deflate; client_no_context_takeover; client_max_window_bits$/);
    for (const response of ['permessage-deflate; server_no_context_takeover; server_max_window_bits=12', 'permessage-deflate; server_no_context_takeover']) {
      const accepted = acceptDeflateResponse(response, o);
      assert.ok(accepted, response);
      assert.equal(passthroughCompatibility(small, accepted).toClient, false, `${response}: a bigger window than the client allows is not passed on`);
    }
    const fits = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; server_max_window_bits=9', o);
    assert.ok(fits);
    assert.equal(passthroughCompatibility(small, fits).toClient, true, 'a response within the first offer is read by it');
  });

  it('never compresses for a backend that limits us to an 8-bit window (zlib cannot)', () => {
    const o = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_max_window_bits=8', offer);
    assert.ok(o);
    assert.equal(o.compressOutgoing, false);
  });

  it('tells per direction whether compressed frames can pass between the two connections', () => {
    const same = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover', offer);
    assert.ok(same);
    assert.deepEqual(passthroughCompatibility(clientLeg, same), { toBackend: true, toClient: true });
    // The backend limits the window the client compresses with below what the client uses: not to the backend.
    const smaller = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_max_window_bits=10', offer);
    assert.ok(smaller);
    assert.deepEqual(passthroughCompatibility(clientLeg, smaller), { toBackend: false, toClient: true });
    // A client that keeps its context, a backend that resets per message: not to the backend.
    const keeping = negotiateDeflate('permessage-deflate; client_max_window_bits', settings({ client_no_context_takeover: false }));
    assert.ok(keeping);
    const resetting = acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover', backendOffer(keeping, DEFAULTS));
    assert.ok(resetting);
    assert.deepEqual(passthroughCompatibility(keeping, resetting), { toBackend: false, toClient: true });
  });
});
