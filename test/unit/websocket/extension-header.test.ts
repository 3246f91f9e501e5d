import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatExtension, parseExtensionList } from '../../../src/websocket/extension-header.js';

const LIMITS = { maxBytes: 4096, maxElements: 16, maxParams: 8 };

function parse(v: string): ReturnType<typeof parseExtensionList> {
  return parseExtensionList(v, LIMITS);
}

describe('parseExtensionList (RFC 6455 §9.1)', () => {
  it('reads names and parameters, with and without values', () => {
    assert.deepEqual(parse('permessage-deflate; client_max_window_bits; server_max_window_bits=10'), {
      ok: true,
      elements: [{ name: 'permessage-deflate', params: [
        { name: 'client_max_window_bits', value: true }, { name: 'server_max_window_bits', value: '10' },
      ] }],
    });
  });

  it('reads several offers, in order, and several header lines joined with commas', () => {
    const r = parse('permessage-deflate; server_no_context_takeover, permessage-deflate, x-webkit-deflate-frame');
    assert.ok(r.ok);
    assert.deepEqual(r.elements.map((e) => e.name), ['permessage-deflate', 'permessage-deflate', 'x-webkit-deflate-frame']);
    assert.equal(r.elements[0].params[0].name, 'server_no_context_takeover');
  });

  it('unquotes a quoted value (which must be a token once unquoted) and lower-cases names', () => {
    const r = parse('PerMessage-Deflate; Server_Max_Window_Bits="10"');
    assert.deepEqual(r, { ok: true, elements: [{ name: 'permessage-deflate', params: [{ name: 'server_max_window_bits', value: '10' }] }] });
  });

  it('keeps repeated parameters (whether that is allowed is the extension\'s rule)', () => {
    const r = parse('permessage-deflate; server_no_context_takeover; server_no_context_takeover');
    assert.ok(r.ok);
    assert.equal(r.elements[0].params.length, 2);
  });

  it('accepts optional whitespace and skips empty list elements', () => {
    assert.deepEqual(parse(' , permessage-deflate ;\tclient_max_window_bits = 15 ,, '), {
      ok: true, elements: [{ name: 'permessage-deflate', params: [{ name: 'client_max_window_bits', value: '15' }] }],
    });
    assert.deepEqual(parse(''), { ok: true, elements: [] });
  });

  for (const bad of [
    ';', 'permessage-deflate;', 'permessage-deflate; =10', 'permessage-deflate; a=', 'permessage-deflate; a="10',
    'permessage-deflate; a="1 0"', 'permessage-deflate; a="\u00e9"', 'permessage-deflate a', 'perm\u00e9ssage',
    'permessage-deflate; a=b=c', '"quoted-name"', 'permessage-deflate; a=@',
  ]) {
    it(`refuses malformed ${JSON.stringify(bad)}`, () => {
      assert.deepEqual(parse(bad), { ok: false, error: 'syntax' });
    });
  }

  it('enforces its limits before the work they bound', () => {
    assert.deepEqual(parse('x'.repeat(4097)), { ok: false, error: 'too_long' });
    assert.deepEqual(parse(Array.from({ length: 17 }, () => 'permessage-deflate').join(', ')), { ok: false, error: 'too_many' });
    assert.deepEqual(parse(`permessage-deflate${'; a'.repeat(9)}`), { ok: false, error: 'too_many' });
  });

  it('formats one element as it goes on the wire', () => {
    assert.equal(formatExtension({ name: 'permessage-deflate', params: [{ name: 'server_no_context_takeover', value: true }, { name: 'client_max_window_bits', value: '10' }] }),
      'permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
  });
});
