/**
 * The `inspect: { stomp: ... }` section of a service: the issue's example
 * loads (with `${BROKER_PASSWORD}` from the environment and `{principal.id}`
 * left for the inspector), every limit has its documented default, bad
 * patterns and placeholders are refused with the key's path, and a service
 * cannot be configured so that a connection escapes inspection.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { parseConfigText } from '../../../src/config/load.js';
import { destinationPatternProblem } from '../../../src/config/inspect.js';

const EXAMPLE = `
services:
  chat:
    path: /stomp
    type: tcp
    backend: tcp://127.0.0.1:61613
    subprotocols: [v12.stomp, v11.stomp]
    require_subprotocol: true
    inspect:
      stomp:
        subscribe: ["/topic/news.*", "/exchange/chat/room.{claims.room}", "/queue/user.{principal.id}"]
        send: ["/exchange/chat/room.{claims.room}", "/queue/support"]
        max_subscriptions: 50
        on_violation: error
        connect:
          login: "{principal.id}"
          passcode: "\${BROKER_PASSWORD}"
          host: "/"
`;

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    // Where in the file (line, column) is the loader's to test; here the path and the message.
    return err.issues.map((i) => i.replace(/ \(line \d+, column \d+\)/, ''));
  }
  assert.fail('expected a ConfigError');
}

/** The example with its inspect.stomp block replaced. */
function withStomp(lines: string[], service = ''): string {
  return `
services:
  chat:
    path: /stomp
    type: websocket
    backend: ws://127.0.0.1:15674/ws
    subprotocols: [v12.stomp]
    require_subprotocol: true
${service}    inspect:
      stomp:
${lines.map((l) => `        ${l}`).join('\n')}
`;
}

describe('config: inspect.stomp', () => {
  it('the issue example loads; ${VAR} is substituted and {placeholders} are left alone', () => {
    const config = parseConfigText(EXAMPLE, { BROKER_PASSWORD: 's3cret' });
    const svc = config.services.chat;
    assert.equal(svc.type, 'tcp');
    const stomp = svc.type === 'tcp' ? svc.inspect?.stomp : undefined;
    assert.ok(stomp);
    assert.deepEqual(stomp.subscribe, ['/topic/news.*', '/exchange/chat/room.{claims.room}', '/queue/user.{principal.id}']);
    assert.deepEqual(stomp.connect, { login: '{principal.id}', passcode: 's3cret', host: '/' });
    assert.equal(stomp.max_subscriptions, 50);
    assert.equal(stomp.on_violation, 'error');
  });

  it('a missing ${BROKER_PASSWORD} is an error naming the key', () => {
    assert.deepEqual(issuesOf(EXAMPLE), ['services.chat.inspect.stomp.connect.passcode: environment variable BROKER_PASSWORD is not set']);
  });

  it('every limit has its documented default', () => {
    const config = parseConfigText(withStomp(['{}']).replace('stomp:\n        {}', 'stomp: {}'), {});
    const svc = config.services.chat;
    const stomp = svc.type === 'websocket' ? svc.inspect?.stomp : undefined;
    assert.deepEqual(stomp, {
      subscribe: [], send: [], max_subscriptions: 100, on_violation: 'error',
      connect_timeout: 10_000, min_heart_beat: 1_000, max_headers: 32, max_header_line: 4096,
    }, 'max_frame and max_body default at run time: the service max_message, then max_frame');
  });

  it('sizes and durations take units', () => {
    const config = parseConfigText(withStomp(['max_frame: 64KiB', 'max_body: 32KiB', 'max_header_line: 1KiB', 'connect_timeout: 2s', 'min_heart_beat: 500ms']), {});
    const svc = config.services.chat;
    const stomp = svc.type === 'websocket' ? svc.inspect?.stomp : undefined;
    assert.equal(stomp?.max_frame, 65536);
    assert.equal(stomp?.max_body, 32768);
    assert.equal(stomp?.max_header_line, 1024);
    assert.equal(stomp?.connect_timeout, 2000);
    assert.equal(stomp?.min_heart_beat, 500);
  });

  it('bad patterns, placeholders and keys are refused with their path', () => {
    const issues = issuesOf(withStomp([
      'subscribe: ["/topic/a*", "/q/{principal.name}", "/t/#", "/u/{principal.id}*"]',
      'send: ["", "/x/${principal.id}"]',
      'connect: { login: "{claims}", bogus: 1 }',
      'on_violation: drop',
      'max_frame: 32MiB',
    ]), {});
    const expect = [
      'services.chat.inspect.stomp.subscribe.0: "a*": * and ** stand for whole segments (between / or .)',
      'services.chat.inspect.stomp.subscribe.1: unknown placeholder {principal.name}: placeholders are {principal.id} and {claims.NAME}',
      'services.chat.inspect.stomp.subscribe.2: "#" is a broker wildcard, not pattern syntax: write * (one segment) or ** (any number)',
      'services.chat.inspect.stomp.subscribe.3: "*" next to a placeholder: * and ** stand for whole segments',
      'services.chat.inspect.stomp.send.0: an empty pattern',
      'services.chat.inspect.stomp.send.1: ${principal.id} is environment substitution; write the placeholder without "$": {principal.id}',
      'services.chat.inspect.stomp.connect.login: unknown placeholder {claims}: placeholders are {principal.id} and {claims.NAME}',
      'services.chat.inspect.stomp.connect: unknown key "bogus"',
    ];
    for (const e of expect) assert.ok(issues.includes(e), `missing: ${e}\ngot:\n${issues.join('\n')}`);
    assert.ok(issues.some((i) => i.startsWith('services.chat.inspect.stomp.on_violation:')), issues.join('\n'));
    assert.ok(issues.some((i) => i.startsWith('services.chat.inspect.stomp.max_frame: between 1 byte and 16 MiB')), issues.join('\n'));
  });

  it('an inspected service cannot let a connection past uninspected', () => {
    const base = (extra: string, protocols = '[v12.stomp]', require = 'true'): string => `
services:
  chat:
    path: /stomp
    type: websocket
    backend: ws://127.0.0.1:15674/ws
    subprotocols: ${protocols}
    require_subprotocol: ${require}
${extra}    inspect: { stomp: {} }
`;
    assert.deepEqual(issuesOf(base('', '[v12.stomp]', 'false')), ['services.chat.require_subprotocol: must be true with inspect (a client offering no subprotocol would not be inspected)']);
    assert.deepEqual(issuesOf(base('', '[v12.stomp, mqtt]')), ['services.chat.subprotocols: mqtt has no inspector configured (inspected: v10.stomp, v11.stomp, v12.stomp)']);
    assert.deepEqual(issuesOf(base('    backend_protocols: [v12.stomp, chat]\n')), ['services.chat.backend_protocols: chat has no inspector configured (inspected: v10.stomp, v11.stomp, v12.stomp)']);
    assert.ok(issuesOf(base('', '[]')).includes('services.chat.subprotocols: an inspected service lists its subprotocols (e.g. [v10.stomp, v11.stomp, v12.stomp])'));
    assert.deepEqual(issuesOf(base('').replace('inspect: { stomp: {} }', 'inspect: {}')), ['services.chat.inspect: names no protocol (e.g. stomp:)']);
  });

  it('echo services have no inspect section', () => {
    const issues = issuesOf('services:\n  e:\n    path: /e\n    type: echo\n    inspect: { stomp: {} }\n');
    assert.ok(issues.some((i) => i.includes('unknown key "inspect"')), issues.join('\n'));
  });

  it('pattern syntax: wildcards are whole segments', () => {
    for (const ok of ['/topic/*', '/topic/**', '**', '*', '/a/*/b.**', '/q/{principal.id}.*', '/q/{claims.room}/**', '/q/x-{principal.id}']) {
      assert.equal(destinationPatternProblem(ok), undefined, ok);
    }
    for (const bad of ['/topic/***', '/topic/*x', '/topic/x*', '/t/>', '{principal.id}**', '/a/**{claims.x}']) {
      assert.notEqual(destinationPatternProblem(bad), undefined, bad);
    }
  });
});
