/**
 * `gatehouse hash-password [--algorithm scrypt|argon2id|bcrypt] [--user NAME]`
 *
 * Reads the password from standard input (never from the command line, where
 * `ps` and shell history would show it), prints a hash for the `basic`
 * method's users file — `NAME:hash` with --user. On a terminal the password is
 * asked for twice without echo.
 */
import type { Readable, Writable } from 'node:stream';
import { hashPassword, type HashAlgorithm } from './passwords.js';

export interface CommandIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

export const HASH_PASSWORD_USAGE = 'usage: gatehouse hash-password [--algorithm scrypt|argon2id|bcrypt] [--user NAME] < password';

/** Reads one line; on a TTY without echo. */
function readLine(io: CommandIo, prompt: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const tty = io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
    if (tty) { io.stderr.write(prompt); io.stdin.setRawMode!(true); }
    let buf = '';
    const finish = (line: string | undefined): void => {
      io.stdin.off('data', onData);
      io.stdin.off('end', onEnd);
      io.stdin.pause();
      if (tty) { io.stdin.setRawMode!(false); io.stderr.write('\n'); }
      resolve(line);
    };
    const onData = (chunk: Buffer | string): void => {
      const s = chunk.toString();
      for (const ch of s) {
        if (ch === '\n' || ch === '\r') { io.stdin.unshift(Buffer.from(s.slice(s.indexOf(ch) + 1))); finish(buf); return; }
        if (tty && ch === '\u0003') { finish(undefined); return; }
        if (tty && (ch === '\u007f' || ch === '\b')) { buf = buf.slice(0, -1); continue; }
        buf += ch;
        if (buf.length > 1024) { finish(undefined); return; }
      }
    };
    const onEnd = (): void => finish(buf.length > 0 ? buf : undefined);
    io.stdin.on('data', onData);
    io.stdin.on('end', onEnd);
    io.stdin.resume();
  });
}

export async function hashPasswordCommand(args: string[], io: CommandIo): Promise<number> {
  let algorithm: HashAlgorithm = 'scrypt';
  let user: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if ((a === '--algorithm' || a === '-a') && i + 1 < args.length) {
      const v = args[++i];
      if (v !== 'scrypt' && v !== 'argon2id' && v !== 'bcrypt') { io.stderr.write(`unknown algorithm ${v}\n${HASH_PASSWORD_USAGE}\n`); return 2; }
      algorithm = v;
    } else if ((a === '--user' || a === '-u') && i + 1 < args.length) {
      user = args[++i];
      if (!/^[^:\s]{1,256}$/.test(user)) { io.stderr.write('a user name has no colon or spaces\n'); return 2; }
    } else if (a === '--help' || a === '-h') {
      io.stdout.write(`${HASH_PASSWORD_USAGE}\n`);
      return 0;
    } else {
      io.stderr.write(`unexpected argument ${a}\n${HASH_PASSWORD_USAGE}\n`);
      return 2;
    }
  }
  const password = await readLine(io, 'password: ');
  if (password === undefined || password.length === 0) { io.stderr.write('no password given\n'); return 1; }
  if (io.stdin.isTTY) {
    const again = await readLine(io, 'again: ');
    if (again !== password) { io.stderr.write('the passwords differ\n'); return 1; }
  }
  const hash = await hashPassword(password, algorithm);
  io.stdout.write(user !== undefined ? `${user}:${hash}\n` : `${hash}\n`);
  return 0;
}
