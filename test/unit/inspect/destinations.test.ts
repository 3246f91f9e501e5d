/**
 * Destination patterns and placeholders: `*` one segment, `**` any number,
 * `/` and `.` separators, everything else literal — and every value filled in
 * from the identity literal too (ids `*`, `**`, `a.b`, `../x` match their own
 * name and nothing more); an absent placeholder matches nothing; broker
 * wildcards in a destination only pass a pattern wildcard as wide.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DestinationPattern } from '../../../src/inspect/stomp/destinations.js';
import { fillTemplate, placeholderValue, type PlaceholderIdentity } from '../../../src/inspect/placeholders.js';
import { parseTemplate, type TemplatePart } from '../../../src/config/placeholders.js';

const alice: PlaceholderIdentity = { id: 'alice', claims: { room: '42', floor: 3, admin: true, tags: ['x'], empty: '', nested: { a: 1 } } };

function check(pattern: string, identity: PlaceholderIdentity | undefined, yes: string[], no: string[]): void {
  const p = new DestinationPattern(pattern);
  for (const d of yes) assert.equal(p.matches(d, identity), true, `${pattern} should match ${d}`);
  for (const d of no) assert.equal(p.matches(d, identity), false, `${pattern} should not match ${d}`);
}

function parts(text: string): TemplatePart[] {
  const t = parseTemplate(text);
  assert.ok('parts' in t, text);
  return t.parts;
}

describe('destination patterns', () => {
  it('literal patterns match exactly (case, trailing separators, encodings)', () => {
    check('/queue/support', alice, ['/queue/support'], ['/queue/Support', '/queue/support/', '/queue/support.x', '/queue/supportx', '/queue', '/queue%2Fsupport', '']);
  });

  it('* matches exactly one non-empty segment, / and . both separate', () => {
    check('/topic/news.*', alice, ['/topic/news.sport', '/topic/news.a-b_c'], ['/topic/news.', '/topic/news', '/topic/news.a.b', '/topic/news.a/b', '/topic/newsx.a']);
    check('/exchange/*/room', alice, ['/exchange/chat/room'], ['/exchange//room', '/exchange/a.b/room', '/exchange/room']);
    check('*', alice, ['queue'], ['/queue', 'a.b', '']);
  });

  it('** matches any number of segments, none included, with the separator before it', () => {
    check('/topic/**', alice, ['/topic', '/topic/a', '/topic/a.b/c', '/topic/a/../admin'], ['/topicx', '/topic.a', '/queue/a']);
    check('/a/**/b', alice, ['/a/b', '/a/x/b', '/a/x.y/z/b'], ['/a/b/c', '/ab', '/a/xb']);
    check('/topic/news.**', alice, ['/topic/news', '/topic/news.a.b', '/topic/news.a/b'], ['/topic/newsx', '/topic/news/a']);
    check('**', alice, ['', '/queue/a', 'x.y'], []);
    check('**/end', alice, ['/end', 'a/end', '/x/y/end'], ['/ending']);
  });

  it('several ** on a long destination finish (memoised: polynomial, not exponential, backtracking)', { timeout: 20_000 }, () => {
    const p = new DestinationPattern('/**/a/**/a/**/a/**/a/**/b');
    const long = '/' + Array.from({ length: 300 }, () => 'a').join('/');
    assert.equal(p.matches(long, alice), false);
    assert.equal(p.matches(`${long}/b`, alice), true);
  });

  it('placeholders: {principal.id} and {claims.NAME} filled from the identity', () => {
    check('/queue/user.{principal.id}', alice, ['/queue/user.alice'], ['/queue/user.bob', '/queue/user.alice.x', '/queue/user.*']);
    check('/exchange/chat/room.{claims.room}', alice, ['/exchange/chat/room.42'], ['/exchange/chat/room.43', '/exchange/chat/room.*']);
    check('/floor/{claims.floor}/*', alice, ['/floor/3/a'], ['/floor/4/a']);
    check('/u/{principal.id}-{claims.room}/**', alice, ['/u/alice-42', '/u/alice-42/x.y'], ['/u/alice-43']);
  });

  it('an absent placeholder matches nothing: no principal, missing, empty, non-text claims, inherited names', () => {
    for (const name of ['missing', 'admin', 'tags', 'empty', 'nested', '__proto__', 'constructor', 'toString']) {
      check(`/q/{claims.${name}}`, alice, [], [`/q/${String((alice.claims as Record<string, unknown>)[name])}`, '/q/', '/q/true', '/q/x']);
    }
    check('/queue/user.{principal.id}', undefined, [], ['/queue/user.', '/queue/user.undefined']);
    check('/queue/user.{principal.id}', { id: '', claims: {} }, [], ['/queue/user.']);
    check('/q/{claims.room}/**', { id: 'bob', claims: {} }, [], ['/q/', '/q', '/q/42']);
  });

  it('ids that look like pattern syntax or paths are literal: *, **, a.b, ../x', () => {
    const pattern = '/queue/user.{principal.id}';
    const as = (id: string): PlaceholderIdentity => ({ id, claims: {} });
    // `*` and `**`: on a queue, their own literal names would be the only match — but a segment that is
    // exactly a broker wildcard is never allowed by literal text (it would subscribe to every user's topic).
    check(pattern, as('*'), [], ['/queue/user.*', '/queue/user.alice', '/queue/user.x']);
    check(pattern, as('**'), ['/queue/user.**'], ['/queue/user.alice', '/queue/user.a.b', '/queue/user.*']);
    check(pattern, as('a.b'), ['/queue/user.a.b'], ['/queue/user.a', '/queue/user.a.c', '/queue/user.a.b.c', '/queue/user.a/b']);
    check(pattern, as('../x'), ['/queue/user.../x'], ['/queue/x', '/queue/user.x', '/queue/user../x', '/queue/user.../y']);
    check('/topic/user.{principal.id}.inbox', as('#'), [], ['/topic/user.#.inbox']);
    // Not a whole segment: literal to the broker too.
    check('/topic/user-{principal.id}', as('*'), ['/topic/user-*'], ['/topic/user-alice']);
  });

  it('broker wildcards in the destination need a pattern wildcard as wide', () => {
    check('/topic/news.*', alice, ['/topic/news.*'], ['/topic/news.#', '/topic/news.>']);
    check('/topic/news.**', alice, ['/topic/news.*', '/topic/news.#', '/topic/news.>', '/topic/news.a.#'], []);
    check('/topic/*.x', alice, ['/topic/*.x'], ['/topic/#.x']);
  });
});

describe('placeholders', () => {
  it('values: the id, string and finite number claims; nothing else', () => {
    assert.equal(placeholderValue({ source: 'principal' }, alice), 'alice');
    assert.equal(placeholderValue({ source: 'claim', name: 'room' }, alice), '42');
    assert.equal(placeholderValue({ source: 'claim', name: 'floor' }, alice), '3');
    assert.equal(placeholderValue({ source: 'claim', name: 'n' }, { id: 'x', claims: { n: Number.NaN } }), undefined);
    assert.equal(placeholderValue({ source: 'claim', name: 'admin' }, alice), undefined);
    assert.equal(placeholderValue({ source: 'principal' }, undefined), undefined);
  });

  it('fillTemplate: text filled in, undefined when a placeholder is absent', () => {
    assert.equal(fillTemplate(parts('{principal.id}@{claims.room}'), alice), 'alice@42');
    assert.equal(fillTemplate(parts('static'), undefined), 'static');
    assert.equal(fillTemplate(parts('{claims.missing}'), alice), undefined);
  });

  it('template syntax: unknown placeholders, unclosed braces and ${...} are errors', () => {
    assert.deepEqual(parts('/a/{principal.id}/{claims.x.y}'), ['/a/', { source: 'principal' }, '/', { source: 'claim', name: 'x.y' }]);
    for (const bad of ['{principal.name}', '{claims.}', '{x}', '/a/{principal.id', '${principal.id}', '{}']) {
      assert.ok('error' in parseTemplate(bad), bad);
    }
  });
});
