/**
 * The payloads of Autobahn's compression cases (categories 12 and 13).
 *
 * wstest sends slices of five files from its `testdata/` directory. Two are
 * its own report output (data1.json, data1.html), one is Project Gutenberg's
 * Faust (pg2229.txt), two are third-party files this repository does not
 * carry (a bitmap image and a PDF paper). So by default each is replaced by
 * generated data of the same kind, the same size, the same text/binary
 * treatment and about the same deflate ratio (measured on the originals:
 * json 0.044, html 0.055, faust 0.385, bitmap 0.866, pdf 0.759 of their size;
 * the generated ones are within a few points, printed by `describeTestData`).
 * Text data keeps non-ASCII characters, because text cases slice by
 * character, as wstest does.
 *
 * With AUTOBAHN_TESTDATA=<dir> the original files are used instead, e.g.
 * extracted from a checkout of crossbario/autobahn-testsuite
 * (autobahntestsuite/autobahntestsuite/testdata/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';

export interface TestData {
  key: string;
  desc: string;
  file: string;
  size: number;
  /** wstest's flag: binary messages of byte slices; otherwise text messages of character slices. */
  binary: boolean;
}

/** wstest's WS_COMPRESSION_TESTDATA, in its historical order (WS_COMPRESSION_TESTDATA_KEYS). */
export const TEST_DATA: readonly TestData[] = [
  { key: 'json_data1', desc: 'Large JSON data file', file: 'data1.json', size: 194_056, binary: false },
  { key: 'lena512', desc: 'Lena Picture, Bitmap 512x512 bw', file: 'lena512.bmp', size: 263_222, binary: true },
  { key: 'gutenberg_faust', desc: "Human readable text, Goethe's Faust I (German)", file: 'pg2229.txt', size: 222_218, binary: true },
  { key: 'html_data1', desc: 'Large HTML file', file: 'data1.html', size: 263_647, binary: false },
  { key: 'ooms', desc: 'A larger PDF', file: '10.1.1.105.5439.pdf', size: 1_042_328, binary: true },
];

/** A small deterministic PRNG (mulberry32): the same bytes on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fitText(text: string, size: number): Buffer {
  let b = Buffer.from(text, 'utf8');
  while (b.length < size) b = Buffer.concat([b, b]);
  // Cut on a character boundary, then pad with ASCII to the exact size.
  let end = size;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return Buffer.concat([b.subarray(0, end), Buffer.alloc(size - end, 0x20)]);
}

/** An Autobahn report (JSON), as data1.json is. */
function reportJson(size: number): Buffer {
  const rnd = prng(1);
  const agents = ['AutobahnPython/0.6.0', 'Gatehouse/0.1.0', 'ws/8.23.0', 'websockets/14.2'];
  let s = '{\n';
  for (const agent of agents) {
    s += `   "${agent}": {\n`;
    for (let cat = 1; cat <= 13 && s.length < size; cat++) {
      for (let sub = 1; sub <= 8; sub++) {
        for (let n = 1; n <= 18; n++) {
          const id = `${cat}.${sub}.${n}`;
          const behavior = rnd() < 0.93 ? 'OK' : rnd() < 0.5 ? 'NON-STRICT' : 'INFORMATIONAL';
          s += `      "${id}": {\n         "behavior": "${behavior}",\n         "behaviorClose": "OK",\n` +
            `         "duration": ${Math.floor(rnd() * rnd() * 900) + 1},\n         "remoteCloseCode": ${rnd() < 0.8 ? 1000 : 1002},\n` +
            `         "reportfile": "${agent.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_case_${id.replace(/\./g, '_')}.json"\n      },\n`;
        }
      }
    }
    s += '   },\n';
  }
  return fitText(s, size);
}

/** A 512×512 8-bit grey bitmap of a smooth picture with sensor noise, as lena512.bmp is. */
function bitmap(size: number): Buffer {
  const rnd = prng(2);
  const header = Buffer.alloc(54 + 1024);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(size, 2);
  header.writeUInt32LE(54 + 1024, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(512, 18);
  header.writeInt32LE(512, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(8, 28);
  header.writeUInt32LE(512 * 512, 34);
  header.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) header.writeUInt32LE(i * 0x010101, 54 + i * 4);
  const pixels = Buffer.alloc(size - header.length);
  for (let i = 0; i < pixels.length; i++) {
    const x = i % 512, y = Math.floor(i / 512);
    const v = 128 + 60 * Math.sin(x / 37) * Math.cos(y / 23) + 40 * Math.sin((x + y) / 91) + (rnd() - 0.5) * 10;
    pixels[i] = Math.max(0, Math.min(255, Math.round(v)));
  }
  return Buffer.concat([header, pixels]);
}

const SYLLABLES = 'ge be ver zer er ent an auf aus bei mit nach vor ü ö ä heit keit lich ig isch ung en er el schaft tum nis sam bar haft ster schl str sch spr pf ch ck tz ß ei au eu ie'.split(' ');
/** A word made of German syllables (the text's vocabulary is large, like a real one). */
function coined(rnd: () => number): string {
  let w = '';
  const n = 2 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)];
  return w;
}

/** German verse with umlauts and speakers, as Faust is (sent as binary by wstest). */
function germanText(size: number): Buffer {
  const rnd = prng(3);
  const words = ('und der die das nicht ich ist mit sich dem den ein zu mir Welt Geist Herz Gott Teufel Nacht ' +
    'Himmel Erde Liebe schön süß hören möchte würde müssen Tür Blüte Wünsche Träume Flügel über für Glück ' +
    'weiß groß Fuß Straße heißt genießen Mädchen Brüder Götter Gefühl Natur Wissen Zauber Sonne Mond Feuer ' +
    'doch nur noch schon wohl ganz gar hier dort wie was wer wenn dann denn also auch sehr viel wenig ' +
    'zögern blühen glühen Seele Menschen Tag Stunde ewig immer nimmer wieder Lust Schmerz Ruh Qual').split(' ');
  const speakers = ['FAUST', 'MEPHISTOPHELES', 'MARGARETE', 'WAGNER', 'MARTHE', 'CHOR DER ENGEL', 'DER HERR'];
  let s = '\ufeffThe Project Gutenberg EBook of Faust: Der Tragödie erster Teil, by Johann Wolfgang von Goethe\r\n\r\n';
  while (s.length < size) {
    s += `${speakers[Math.floor(rnd() * speakers.length)]}:\r\n`;
    const lines = 2 + Math.floor(rnd() * 8);
    for (let l = 0; l < lines; l++) {
      const n = 4 + Math.floor(rnd() * 5);
      const line: string[] = [];
      for (let w = 0; w < n; w++) line.push(rnd() < 0.5 ? words[Math.floor(rnd() * words.length)] : coined(rnd));
      const text = line.join(' ');
      s += `${text[0].toUpperCase()}${text.slice(1)}${rnd() < 0.3 ? '!' : rnd() < 0.5 ? ',' : '.'}\r\n`;
    }
    s += '\r\n';
  }
  return fitText(s, size);
}

/** An Autobahn report page (HTML), as data1.html is, with its handful of non-ASCII characters. */
function reportHtml(size: number): Buffer {
  const rnd = prng(4);
  let s = '<!DOCTYPE html>\n<html>\n   <head>\n      <meta charset="utf-8" />\n      <style lang="css">\n';
  for (const sel of ['body', 'p#intro', 'td', 'table#agent_case_results', 'td.outcome_desc', 'td.agent', 'td.case']) {
    s += `${sel} {\n   background-color: #${Math.floor(rnd() * 0xffffff).toString(16).padStart(6, '0')};\n   color: #333;\n   font-size: 0.8em;\n   padding: 4px;\n}\n\n`;
  }
  s += '</style>\n   </head>\n   <body>\n      <p id="intro">Testsuite by µ-Autobahn — Größe, Ähnlichkeit, à la carte, ʼκόσμεʼ.</p>\n' +
    '      <table id="agent_case_results">\n';
  let n = 0;
  while (s.length < size) {
    const ok = rnd() < 0.9;
    s += `         <tr class="agent_case_result_row">\n            <td class="case"><a href="#case_${++n}">Case ${Math.floor(n / 18) + 1}.${n % 18}</a></td>\n` +
      `            <td class="case_${ok ? 'ok' : 'failed'}"><a href="agent_case_${n}.html">${ok ? 'Pass' : 'Fail'}</a><br/><span class="case_duration">${Math.floor(rnd() * 4000)} ms, ${Math.floor(rnd() * 100000)} octets</span></td>\n` +
      `            <td class="close_${ok ? 'ok' : 'failed'}"><span class="close_code">${rnd() < 0.8 ? 1000 : 1002}</span></td>\n         </tr>\n`;
  }
  return fitText(s, size);
}

/** A PDF: deflated streams (incompressible) between object text, as the paper is. */
function pdf(size: number): Buffer {
  const rnd = prng(5);
  const parts: Buffer[] = [Buffer.from('%PDF-1.2\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let length = parts[0].length;
  let obj = 1;
  while (length < size) {
    const streamLen = 800 + Math.floor(rnd() * 3000);
    const head = Buffer.from(`${obj} 0 obj\n<</Length ${obj + 1} 0 R/Filter /FlateDecode>>\nstream\n`, 'latin1');
    const body = Buffer.alloc(streamLen);
    for (let i = 0; i < streamLen; i++) body[i] = rnd() < 0.55 ? Math.floor(rnd() * 256) : 0x20 + Math.floor(rnd() * 4);
    const tail = Buffer.from(`\nendstream\nendobj\n${obj + 1} 0 obj\n${streamLen}\nendobj\n${obj + 2} 0 obj\n<</Type/Page/Contents ${obj} 0 R/Resources ${obj + 3} 0 R/MediaBox[0 0 612 792]/Parent 3 0 R>>\nendobj\n`, 'latin1');
    parts.push(head, body, tail);
    length += head.length + body.length + tail.length;
    obj += 4;
  }
  return Buffer.concat(parts).subarray(0, size);
}

const GENERATORS: Record<string, (size: number) => Buffer> = {
  json_data1: reportJson, lena512: bitmap, gutenberg_faust: germanText, html_data1: reportHtml, ooms: pdf,
};

const cache = new Map<string, Buffer>();

/** The bytes of one data set: the original file when AUTOBAHN_TESTDATA names a directory, else the generated stand-in. */
export function testDataBytes(td: TestData): Buffer {
  let b = cache.get(td.key);
  if (b === undefined) {
    const dir = process.env.AUTOBAHN_TESTDATA;
    b = dir ? readFileSync(join(dir, td.file)) : GENERATORS[td.key](td.size);
    cache.set(td.key, b);
  }
  return b;
}

/** Where the data came from, for the report. */
export function testDataSource(): string {
  return process.env.AUTOBAHN_TESTDATA ? `the original wstest files (AUTOBAHN_TESTDATA=${process.env.AUTOBAHN_TESTDATA})` : 'generated stand-ins (test/conformance/testdata.ts)';
}

/** Size and deflate ratio of each data set, to compare the stand-ins with the originals. */
export function describeTestData(): string[] {
  return TEST_DATA.map((td) => {
    const b = testDataBytes(td);
    return `${td.key}: ${b.length} bytes, deflate ratio ${(deflateRawSync(b).length / b.length).toFixed(3)}`;
  });
}
