/** Builds the client package (client/dist) once per test process, so the gateway can serve it. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

let built: Promise<void> | undefined;
export function buildClient(): Promise<void> {
  built ??= promisify(execFile)(process.execPath, ['client/build.mjs', '--no-types']).then(() => undefined);
  return built;
}
