/**
 * The floors of the house (docs/architecture.md), checked: every file under
 * src/ stands on one floor, and imports only from its own floor and the
 * floors named in its `mayImport`. Type-only imports count: a type names the
 * floor it comes from as surely as a value does.
 *
 * Run by `npm run lint`: `node --import tsx scripts/floors.ts [root]` prints
 * each wrong import (file, line, what it imports) and exits 1. A new folder
 * under src/ must be given a floor here before it is allowed anywhere.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface Floor {
  readonly name: string;
  /** Folders (ending in '/') and files, relative to the project root. */
  readonly paths: readonly string[];
  /** The other floors this one may import from (its own is always allowed). */
  readonly mayImport: readonly string[];
}

const GROUND = 'ground';
const TRANSPORTS = ['websocket', 'fallback'];

export const FLOORS: readonly Floor[] = [
  // The ground floor: records and contracts everything reads; imports nothing above it.
  {
    name: GROUND,
    paths: ['src/config/', 'src/observe/', 'src/http/', 'src/channel.ts', 'src/admitted.ts', 'src/shared-state/', 'src/errors.ts', 'src/clock.ts', 'src/bus.ts'],
    mayImport: [],
  },
  // Policy: the checks and their pipeline; auth's checks follow admission's contract.
  { name: 'admission', paths: ['src/admission/'], mayImport: [GROUND] },
  { name: 'auth', paths: ['src/auth/'], mayImport: [GROUND, 'admission'] },
  // Transports: each turns a client into a Channel; they know nothing of policy, services or each other.
  { name: 'websocket', paths: ['src/websocket/'], mayImport: [GROUND] },
  { name: 'fallback', paths: ['src/fallback/'], mayImport: [GROUND] },
  // The relay and its inspectors: between a client Channel and a backend end.
  { name: 'relay', paths: ['src/relay/'], mayImport: [GROUND] },
  { name: 'inspect', paths: ['src/inspect/'], mayImport: [GROUND, 'relay'] },
  // Services dial backends (a WebSocket backend through our own codec) and relay to them.
  { name: 'services', paths: ['src/services/'], mayImport: [GROUND, 'relay', 'inspect', 'websocket'] },
  // The cluster: workers, the state they share (in the primary or on Redis), fallback hops, pub/sub fan-out.
  { name: 'cluster', paths: ['src/cluster/'], mayImport: [GROUND] },
  // The ordered list of checks, composed from admission's and auth's.
  { name: 'checks', paths: ['src/checks.ts'], mayImport: [GROUND, 'admission', 'auth'] },
  // The front door: both doors (upgrade, fallback requests) orchestrate everything below.
  { name: 'front', paths: ['src/front/'], mayImport: [GROUND, 'admission', 'auth', ...TRANSPORTS, 'relay', 'services'] },
  // The admin listener: metrics, health, the admin API and the dashboard, over what the gateway hands it.
  { name: 'admin', paths: ['src/admin/'], mayImport: [GROUND] },
  // Composition: the gateway builds everything; the command line starts it; nothing imports either.
  {
    name: 'gateway',
    paths: ['src/gateway.ts'],
    mayImport: [GROUND, 'admission', 'auth', ...TRANSPORTS, 'relay', 'inspect', 'services', 'checks', 'front', 'admin'],
  },
  {
    name: 'cli',
    paths: ['src/cli.ts', 'src/start.ts', 'src/cluster-setup.ts', 'src/primary-admin.ts'],
    mayImport: [GROUND, 'admission', 'auth', ...TRANSPORTS, 'relay', 'inspect', 'services', 'checks', 'front', 'admin', 'gateway', 'cluster'],
  },
  { name: 'main', paths: ['src/main.ts'], mayImport: ['cli'] },
];

export interface WrongImport {
  /** The importing file, relative to the root, with '/' separators. */
  file: string;
  line: number;
  specifier: string;
  message: string;
}

/** The floor a project-relative path stands on, or undefined. */
export function floorOf(path: string, floors: readonly Floor[] = FLOORS): Floor | undefined {
  return floors.find((f) => f.paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p)));
}

/** The relative imports of a TypeScript source (static, re-exports, dynamic, side-effect), with their lines. */
export function importsOf(source: string): Array<{ specifier: string; line: number }> {
  const { importedFiles } = ts.preProcessFile(source, true, true);
  return importedFiles
    .filter((f) => f.fileName.startsWith('.'))
    .map((f) => ({ specifier: f.fileName, line: source.slice(0, f.pos).split('\n').length }));
}

function sourceFiles(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** `./x.js` from `src/a/b.ts` → `src/a/x.ts` (the ESM specifier names the compiled file). */
function resolveSpecifier(fromFile: string, specifier: string): string {
  return posix.normalize(posix.join(posix.dirname(fromFile), specifier)).replace(/\.js$/, '.ts');
}

/** Every import under `root`/src that leaves its floor for one it may not use. */
export function checkFloors(root: string, floors: readonly Floor[] = FLOORS): WrongImport[] {
  const wrong: WrongImport[] = [];
  for (const abs of sourceFiles(join(root, 'src'))) {
    const file = relative(root, abs).split(sep).join('/');
    const floor = floorOf(file, floors);
    if (!floor) {
      wrong.push({ file, line: 1, specifier: '', message: `${file} stands on no floor: give its folder one in scripts/floors.ts` });
      continue;
    }
    for (const { specifier, line } of importsOf(readFileSync(abs, 'utf8'))) {
      const target = resolveSpecifier(file, specifier);
      const to = floorOf(target, floors);
      if (to === floor || (to && floor.mayImport.includes(to.name))) continue;
      const where = to ? `the ${to.name} floor` : 'no floor';
      wrong.push({ file, line, specifier, message: `${file}:${line} (${floor.name}) imports ${specifier} (${where}): ${floor.name} may import ${[floor.name, ...floor.mayImport].join(', ')}` });
    }
  }
  return wrong;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
  const wrong = checkFloors(root);
  for (const w of wrong) console.error(w.message);
  if (wrong.length > 0) {
    console.error(`${wrong.length} import(s) break the floors (scripts/floors.ts, docs/architecture.md)`);
    process.exit(1);
  }
}
