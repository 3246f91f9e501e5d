/** Builds the client package (client/dist) once per test process, so the gateway can serve it. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BUILD = fileURLToPath(new URL('../../client/build.mjs', import.meta.url));

let built: Promise<void> | undefined;
export function buildClient(): Promise<void> {
  built ??= promisify(execFile)(process.execPath, [BUILD, '--no-types']).then(() => undefined);
  return built;
}
