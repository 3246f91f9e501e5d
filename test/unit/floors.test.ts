/**
 * The floors check (scripts/floors.ts, run by `npm run lint`): the real tree
 * passes, and a copy of it with one deliberately wrong import fails — in the
 * checker and as the command `npm run lint` runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkFloors, importsOf } from '../../scripts/floors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the floors of src/', { timeout: 60_000 }, () => {
  let copy: string;
  before(() => {
    copy = mkdtempSync(join(tmpdir(), 'gatehouse-floors-'));
  });
  after(() => rmSync(copy, { recursive: true, force: true }));

  /** A fresh copy of src/ with `line` appended to `file`. */
  function treeWith(file: string, line: string): string {
    const root = mkdtempSync(join(copy, 'tree-'));
    cpSync(join(ROOT, 'src'), join(root, 'src'), { recursive: true });
    appendFileSync(join(root, file), `\n${line}\n`);
    return root;
  }

  it('the tree as it stands breaks no floor', () => {
    assert.deepEqual(checkFloors(ROOT).map((w) => w.message), [], 'wrong-way imports in src/');
  });

  const wrongImports: Array<[string, string, string, RegExp]> = [
    ['a transport imports admission', 'src/websocket/connection.ts', "import type { Rejection } from '../admission/types.js';", /\(websocket\) imports \.\.\/admission\/types\.js \(the admission floor\)/],
    ['a transport imports auth', 'src/fallback/session.ts', "export { authRuntime } from '../auth/runtime.js';", /\(fallback\) imports \.\.\/auth\/runtime\.js/],
    ['a transport imports a service', 'src/fallback/wire.ts', "import type { Service } from '../services/types.js';", /\(fallback\) imports \.\.\/services\/types\.js/],
    ['a transport imports the front door', 'src/websocket/handshake.ts', "const r = await import('../front/request.js');", /\(websocket\) imports \.\.\/front\/request\.js/],
    ['a service imports admission', 'src/services/echo.ts', "import type { AdmissionCheck } from '../admission/types.js';", /\(services\) imports \.\.\/admission\/types\.js/],
    ['a service imports auth', 'src/services/tcp.ts', "import '../auth/identity.js';", /\(services\) imports \.\.\/auth\/identity\.js/],
    ['the relay imports admission', 'src/relay/inspector.ts', "import type { Principal } from '../admission/types.js';", /\(relay\) imports \.\.\/admission\/types\.js/],
    ['the ground floor imports a floor above it', 'src/channel.ts', "import type { Admission } from './admission/types.js';", /src\/channel\.ts:\d+ \(ground\) imports \.\/admission\/types\.js/],
    ['config imports a transport', 'src/config/load.ts', "import { FrameParser } from '../websocket/frame-parser.js';", /\(ground\) imports \.\.\/websocket\/frame-parser\.js/],
    ['admission imports auth (the old loop)', 'src/admission/pipeline.ts', "import { authenticateCheck } from '../auth/authenticate.js';", /\(admission\) imports \.\.\/auth\/authenticate\.js/],
    ['something imports the command line', 'src/gateway.ts', "import { main } from './cli.js';", /\(gateway\) imports \.\/cli\.js \(the cli floor\)/],
  ];
  for (const [what, file, line, expected] of wrongImports) {
    it(`fails when ${what}`, () => {
      const wrong = checkFloors(treeWith(file, line));
      assert.equal(wrong.length, 1, `one wrong import expected, got: ${JSON.stringify(wrong.map((w) => w.message))}`);
      assert.match(wrong[0].message, expected);
      assert.equal(wrong[0].file, file);
    });
  }

  it('fails on a file under a folder that has no floor', () => {
    const root = treeWith('src/clock.ts', '');
    mkdirSync(join(root, 'src/attic'));
    writeFileSync(join(root, 'src/attic/thing.ts'), 'export const x = 1;\n');
    const wrong = checkFloors(root);
    assert.deepEqual(wrong.map((w) => w.file), ['src/attic/thing.ts'], 'the file on no floor is named');
    assert.match(wrong[0].message, /stands on no floor/);
  });

  it('as `npm run lint` runs it: exit 1 and the wrong import named on stderr', async () => {
    const root = treeWith('src/services/types.ts', "import type { Rejection } from '../admission/types.js';");
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/floors.ts'), root], { cwd: ROOT }, (_err, _stdout, stderr) => {
        resolve({ code: child.exitCode, stderr });
      });
    });
    assert.equal(result.code, 1, `exit code; stderr: ${result.stderr}`);
    assert.match(result.stderr, /src\/services\/types\.ts:\d+ \(services\) imports \.\.\/admission\/types\.js/);
  });

  it('reads every kind of import, and not the ones in comments or strings', () => {
    const found = importsOf([
      "import type { A } from './a.js';",
      "export { b } from '../b.js';",
      "import './c.js';",
      "const d = await import('./d.js');",
      "// import { e } from './e.js';",
      "const f = `import('./f.js')`;",
      "import { readFileSync } from 'node:fs';",
    ].join('\n'));
    assert.deepEqual(found.map((i) => i.specifier), ['./a.js', '../b.js', './c.js', './d.js']);
    assert.deepEqual(found.map((i) => i.line), [1, 2, 3, 4]);
  });
});
