/**
 * Autobahn|Testsuite categories 12 and 13 (permessage-deflate), as data.
 *
 * Written from autobahntestsuite/case/case12_x_x.py (crossbario/autobahn-testsuite
 * at b8a5120) and the offers of the Autobahn library wstest runs with: the
 * same ids, message sizes, counts, auto-fragment sizes, waits and offers.
 * Each case offers permessage-deflate, then sends `count` messages one after
 * another (each once the previous echo is back), each compressed with a sync
 * flush and cut into frames of `autoFragmentSize` compressed bytes (0: one
 * frame); every echo must come back with the same type and bytes; then a clean
 * close with 1000. Payloads are consecutive slices of a test data set
 * (testdata.ts), by character for text data, wrapping around at its end.
 *
 * 12.x: the five data sets with wstest's default offer. 13.x: the JSON data
 * with seven offers (context takeover and window bits).
 *
 * wstest sends 1000 messages per case (some 11 GB through zlib in all, far
 * beyond a test run): CONFORMANCE_DEFLATE_MESSAGES sets how many; the test
 * run sends 10 by default, `scripts/conformance-report.mjs` all 1000.
 */
import type { ConformanceCase } from './cases.js';
import { TEST_DATA, testDataBytes, type TestData } from './testdata.js';

/** wstest's MSG_SIZES: (payload length, message count, case timeout in s, auto-fragment size). */
const MSG_SIZES: ReadonlyArray<readonly [number, number, number, number]> = [
  [16, 1000, 60, 0], [64, 1000, 60, 0], [256, 1000, 120, 0], [1024, 1000, 240, 0], [4096, 1000, 480, 0],
  [8192, 1000, 480, 0], [16384, 1000, 480, 0], [32768, 1000, 480, 0], [65536, 1000, 480, 0], [131072, 1000, 480, 0],
  [8192, 1000, 480, 256], [16384, 1000, 480, 256], [32768, 1000, 480, 256], [65536, 1000, 480, 256], [131072, 1000, 480, 256],
  [131072, 1000, 480, 1024], [131072, 1000, 480, 4096], [131072, 1000, 480, 32768],
];

/**
 * Autobahn's PerMessageDeflateOffer(acceptNoContextTakeover = True,
 * acceptMaxWindowBits = True, requestNoContextTakeover, requestMaxWindowBits)
 * as it goes on the wire (its getExtensionString).
 */
function offer(requestNoContextTakeover: boolean, requestMaxWindowBits: number): string {
  let s = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';
  if (requestNoContextTakeover) s += '; server_no_context_takeover';
  if (requestMaxWindowBits !== 0) s += `; server_max_window_bits=${requestMaxWindowBits}`;
  return s;
}
const describeOffers = (offers: Array<[boolean, number]>): string => `[${offers.map(([t, w]) => `(${t ? 'True' : 'False'}, ${w})`).join(', ')}]`;

/** wstest's DEFLATE_PARAMS for 13.1–13.7: the client's offers (requestNoContextTakeover, requestMaxWindowBits). */
const DEFLATE_PARAMS: Array<{ offers: Array<[boolean, number]>; accept: string }> = [
  { offers: [[false, 0]], accept: '[(False, 0)]' },
  { offers: [[true, 0]], accept: '[(True, 0)]' },
  { offers: [[false, 9]], accept: '[(False, 9)]' },
  { offers: [[false, 15]], accept: '[(False, 15)]' },
  { offers: [[true, 9]], accept: '[(True, 9)]' },
  { offers: [[true, 15]], accept: '[(True, 15)]' },
  { offers: [[true, 9], [true, 0], [false, 0]], accept: '[(True, 9), (True, 0), (False, 0)]' },
];

export function deflateMessageCount(): number {
  const n = Number(process.env.CONFORMANCE_DEFLATE_MESSAGES ?? '10');
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1000) : 10;
}

/** wstest's sendOne: the next `len` characters (text) or bytes (binary) of the data, wrapping around. */
function slicer(td: TestData, len: number): (i: number) => Buffer {
  const bytes = testDataBytes(td);
  if (td.binary) {
    return (i) => {
      const from = (i * len) % bytes.length;
      const to = (from + len) % bytes.length;
      return to > from ? bytes.subarray(from, to) : Buffer.concat([bytes.subarray(from), bytes.subarray(0, to)]);
    };
  }
  const text = bytes.toString('utf8');
  return (i) => {
    const from = (i * len) % text.length;
    const to = (from + len) % text.length;
    return Buffer.from(to > from ? text.slice(from, to) : text.slice(from) + text.slice(0, to), 'utf8');
  };
}

function compressionCase(
  id: string, td: TestData, size: readonly [number, number, number, number], offers: Array<[boolean, number]>, offerDesc: string,
): ConformanceCase {
  const [len, , waitS, fragment] = size;
  const count = deflateMessageCount();
  let slice: ((i: number) => Buffer) | undefined;
  return {
    id,
    category: Number(id.split('.')[0]),
    description: `Send 1000 compressed messages each of payload size ${len}, auto-fragment to ${fragment} octets. ${offerDesc}`,
    expectation: `Receive echo'ed messages (with payload as sent). Timeout case after ${waitS} secs.`,
    steps: () => [],
    deflate: { offer: offers.map(([t, w]) => offer(t, w)).join(', ') },
    roundTrips: { count, length: len, binary: td.binary, payload: (i) => (slice ??= slicer(td, len))(i), fragmentSize: fragment },
    close: { closedByMe: true, codes: [1000], requireClean: true },
    after: { action: 'close', ms: waitS * 1000 },
    reportTime: true,
  };
}

function build(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  TEST_DATA.forEach((td, j) => {
    MSG_SIZES.forEach((s, i) => out.push(compressionCase(`12.${j + 1}.${i + 1}`, td, s, [[false, 0]], 'Use default permessage-deflate offer.')));
  });
  const json = TEST_DATA[0];
  DEFLATE_PARAMS.forEach((p, j) => {
    MSG_SIZES.forEach((s, i) => out.push(compressionCase(`13.${j + 1}.${i + 1}`, json, s, p.offers,
      `Use permessage-deflate client offers (requestNoContextTakeover, requestMaxWindowBits): ${describeOffers(p.offers)} / server accept (requestNoContextTakeover, requestMaxWindowBits): ${p.accept}`)));
  });
  return out;
}

/** Categories 12 and 13 (216 cases), in Autobahn's order. */
export const COMPRESSION_CASES: readonly ConformanceCase[] = build();
