/**
 * Suite `mqtt`: what MQTT inspection costs. The same Gatehouse process
 * serves two `tcp` services in front of the same minimal MQTT backend
 * (bench/servers/mqtt-echo.mjs, which returns each PUBLISH to its sender):
 * one with `inspect.mqtt` (every packet framed both ways, each PUBLISH's
 * topic held to the policy) and one passthrough. Same run, alternating order.
 *
 *   load generator ─▶ Gatehouse /mqtt-inspect (inspector) ─▶ mqtt-echo
 *   load generator ─▶ Gatehouse /mqtt-pass (passthrough)  ─▶ mqtt-echo
 *
 * Each connection opens with CONNECT / CONNACK (3.1.1), then sends a 1 KiB
 * QoS 0 PUBLISH and waits for it to come back before sending the next
 * (closed loop, one message in flight per connection), at 1 and 50
 * connections. The metric is Gatehouse's CPU per message (both directions
 * of one PUBLISH), the inspector in the "Gatehouse" column, the passthrough
 * in the other.
 *
 * Target (issue 14): CPU per message with the inspector at most 1.15× the passthrough's.
 */
import { inspectorVsPassthrough } from '../lib/inspector-suite.mjs';
import { GATEHOUSE_ECHO_SERVICE, startMqttEcho } from '../lib/targets.mjs';

export const name = 'mqtt';
export const description = 'MQTT inspection: 1 KiB QoS 0 PUBLISH through the inspector vs passthrough (CPU per message, closed loop)';

const CASES = [{ conns: 1, label: '1 KiB QoS 0 PUBLISH × 1 conn' }, { conns: 50, label: '1 KiB QoS 0 PUBLISH × 50 conn' }];
const TOPIC = 'bench/device-17/telemetry';

/** An MQTT packet: first byte, Remaining Length, body. */
function mqttPacket(first, body) {
  const len = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

const str = (s) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** CONNECT 3.1.1, clean session, no keep-alive. */
const CONNECT = mqttPacket(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 0]), str('bench')]));
/** QoS 0 PUBLISH with a 1 KiB payload. */
const PUBLISH = mqttPacket(0x30, Buffer.concat([str(TOPIC), Buffer.alloc(1024, 0x5a)]));

const SERVICE = {
  ...GATEHOUSE_ECHO_SERVICE,
  type: 'tcp',
  subprotocols: ['mqtt'],
  require_subprotocol: true,
};

async function start(ctx) {
  const backend = await startMqttEcho();
  const backendUrl = `tcp://127.0.0.1:${backend.port}`;
  const gatehouse = await ctx.startServer('gatehouse', {
    config: {
      services: {
        'mqtt-inspect': { ...SERVICE, path: '/mqtt-inspect', backend: backendUrl, inspect: { mqtt: { publish: ['bench/#'], subscribe: ['bench/#'] } } },
        'mqtt-pass': { ...SERVICE, path: '/mqtt-pass', backend: backendUrl },
      },
    },
  });
  return { gatehouse, stop: async () => { await gatehouse.stop(); await backend.stop(); } };
}

export function run(ctx) {
  return inspectorVsPassthrough(ctx, {
    suite: name,
    cases: CASES,
    // The echo returns the PUBLISH byte for byte: verified once before measuring.
    exchange: { subprotocol: 'mqtt', hello: CONNECT, message: PUBLISH, verify: true },
    start: () => start(ctx),
    pathOf: (c, setup) => `/mqtt-${setup}`,
  });
}
