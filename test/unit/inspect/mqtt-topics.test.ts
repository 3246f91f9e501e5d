/**
 * MQTT topic semantics: matching, filter coverage, `$` topics, and the
 * policy's placeholders, whose values never widen a filter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Principal } from '../../../src/admitted.js';
import { compileFilter, compileFilters } from '../../../src/inspect/mqtt/policy.js';
import { anyCovers, anyMatches, covers, matches, parseFilter, parseRequestedFilter, type Filter } from '../../../src/inspect/mqtt/topics.js';

const f = (text: string): Filter => {
  const levels = parseFilter(text);
  assert.ok(levels, `${text} parses as a filter`);
  return levels;
};
const principal = (id: string, claims: Record<string, unknown> = {}): Principal => ({ id, roles: [], claims, method: 'test' });

describe('MQTT topic matching', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true], ['a/b', 'a/c', false], ['a/+', 'a/b', true], ['a/+', 'a/b/c', false], ['a/+', 'a', false],
    ['a/#', 'a', true], ['a/#', 'a/b/c', true], ['a/#', 'b', false], ['#', 'a/b', true], ['+/+', 'a/b', true],
    ['+', '/a', false], ['+/a', '/a', true], ['a//b', 'a//b', true], ['a/+/b', 'a//b', true],
    ['#', '$SYS/x', false], ['+/x', '$SYS/x', false], ['$SYS/#', '$SYS/x', true], ['$SYS/+', '$SYS/x', true],
  ];
  for (const [filter, topic, expected] of cases) {
    it(`${filter} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(matches(f(filter), topic.split('/')), expected);
    });
  }
});

describe('MQTT filter coverage (every topic a requested filter can match is allowed)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['devices/alice/#', 'devices/alice/+/temp', true],
    ['devices/alice/#', 'devices/+/temp', false],
    ['devices/alice/#', 'devices/alice', true],
    ['devices/alice/#', 'devices/alice/#', true],
    ['devices/alice/#', 'devices/#', false],
    ['devices/alice/#', '#', false],
    ['broadcast/+', 'broadcast/news', true],
    ['broadcast/+', 'broadcast/+', true],
    ['broadcast/+', 'broadcast/#', false],
    ['broadcast/+', 'broadcast', false],
    ['broadcast/+', 'broadcast/a/b', false],
    ['a/+/c', 'a/+/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/b/c', 'a/+/c', false],
    ['#', '#', true],
    ['#', '$SYS/#', false],
    ['#', '$SYS/broker', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/broker/+', true],
    ['a/#', 'a/+', true],
    ['a/+', 'a/#', false],
  ];
  for (const [allowed, requested, expected] of cases) {
    it(`${allowed} ${expected ? 'covers' : 'does not cover'} ${requested}`, () => {
      assert.equal(covers(f(allowed), f(requested)), expected);
    });
  }

  it('coverage agrees with matching on sample topics', () => {
    const topics = ['a', 'a/b', 'a/b/c', 'a//c', 'b/b', '$SYS/a', '/a', 'a/c/c'];
    const filters = ['a', 'a/+', 'a/#', '+/b', '#', '+/+/c', 'a/b/#', '$SYS/#', '+', '/+'];
    for (const a of filters) for (const r of filters) {
      if (!covers(f(a), f(r))) continue;
      for (const t of topics) {
        if (matches(f(r), t.split('/'))) assert.ok(matches(f(a), t.split('/')), `${a} covers ${r}, so it must match ${t}`);
      }
    }
  });

  it('property: when a filter covers another, it matches every topic the other matches', () => {
    const level = fc.constantFrom('a', 'b', '', '$x');
    const filterLevel = fc.constantFrom('a', 'b', '', '$x', '+');
    const filter = fc.tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/')).filter((text) => text.length > 0);
    /** Topics `r` matches: each `+` filled with a level, `#` with zero or more levels. */
    const instances = (r: string) => fc.array(fc.tuple(fc.array(level, { minLength: 4, maxLength: 4 }), fc.array(level, { maxLength: 3 })), { minLength: 1, maxLength: 10 })
      .map((fills) => fills.map(([singles, rest]) => {
        const out: string[] = [];
        r.split('/').forEach((l, i) => {
          if (l === '+') out.push(singles[i]);
          else if (l === '#') out.push(...rest);
          else out.push(l);
        });
        return out.length === 0 ? [''] : out;
      }));
    fc.assert(fc.property(filter, filter.chain((r) => fc.tuple(fc.constant(r), instances(r))), (a, [r, topics]) => {
      if (!covers(f(a), f(r))) return;
      for (const t of topics) {
        if (matches(f(r), t)) assert.ok(matches(f(a), t), `${a} covers ${r} but misses ${t.join('/')}`);
      }
    }), { numRuns: 5000 });
  });

  it('refuses invalid filters and reads shared subscriptions', () => {
    for (const bad of ['', 'a/#/b', 'a/b#', 'a/+b', '#/a']) assert.equal(parseFilter(bad), undefined, `${JSON.stringify(bad)} is not a filter`);
    assert.deepEqual(parseRequestedFilter('$share/g/devices/alice/#'), { share: 'g', levels: f('devices/alice/#') });
    for (const bad of ['$share/g', '$share//a', '$share/g+/a', '$share/g/a/#/b']) assert.equal(parseRequestedFilter(bad), undefined, bad);
  });
});

describe('MQTT policy placeholders are literal', () => {
  const allowed = (template: string, p: Principal): Filter[] => compileFilters([template], p);

  it('puts the id in as one literal level', () => {
    const filters = allowed('devices/{principal.id}/#', principal('alice'));
    assert.ok(anyMatches(filters, 'devices/alice/temp'.split('/')));
    assert.ok(!anyMatches(filters, 'devices/bob/temp'.split('/')));
  });

  for (const id of ['a/b', '+', '#', 'al\u0000ice', 'x/#', '']) {
    it(`an id of ${JSON.stringify(id)} never widens devices/{principal.id}/#`, () => {
      const filters = allowed('devices/{principal.id}/#', principal(id));
      for (const topic of ['devices/a/b/x', 'devices/a/x', 'devices/bob/x', 'devices/+/x', 'devices/#/x', 'devices//x']) {
        assert.ok(!anyMatches(filters, topic.split('/')), `id ${JSON.stringify(id)} must not reach ${topic}`);
      }
      for (const req of ['devices/+/x', 'devices/#', '#', 'devices/a/#']) {
        assert.ok(!anyCovers(filters, f(req)), `id ${JSON.stringify(id)} must not be allowed to subscribe ${req}`);
      }
    });
  }

  it('a literal level whose text is a wildcard is still literal', () => {
    // Built by hand: a level that is the text "+" (not the SINGLE wildcard).
    const literalPlus: Filter = ['devices', '+', 'x'];
    assert.ok(!matches(literalPlus, ['devices', 'bob', 'x']));
    assert.ok(!covers(literalPlus, f('devices/+/x')));
  });

  it('a value cannot make a first level reach $-topics', () => {
    assert.equal(compileFilter('{principal.id}/#', principal('$SYS')), undefined);
    assert.deepEqual(compileFilter('{principal.id}/#', principal('alice')), f('alice/#'));
    assert.deepEqual(compileFilter('$SYS/{principal.id}', principal('x')), f('$SYS/x'), 'the template may name $-topics itself');
  });

  it('claims: strings and numbers are values; absent or other types match nothing', () => {
    assert.deepEqual(compileFilter('chat/{claims.room}', principal('a', { room: 'lobby' })), f('chat/lobby'));
    assert.deepEqual(compileFilter('chat/{claims.room}', principal('a', { room: 7 })), f('chat/7'));
    for (const room of [undefined, null, ['a'], { x: 1 }, true, 'a/b', '#']) {
      assert.equal(compileFilter('chat/{claims.room}', principal('a', room === undefined ? {} : { room })), undefined, `room ${JSON.stringify(room)}`);
    }
    assert.equal(compileFilter('chat/{claims.__proto__}', principal('a')), undefined);
  });

  it('placeholders inside a level stay inside it', () => {
    const filters = allowed('chat/room-{claims.room}/+', principal('a', { room: 'x' }));
    assert.ok(anyMatches(filters, 'chat/room-x/m'.split('/')));
    assert.ok(!anyMatches(filters, 'chat/room-y/m'.split('/')));
  });
});
