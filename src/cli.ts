/**
 * The command line: `gatehouse start|check|help`. Each command is one entry in
 * COMMANDS; a command returns the process exit status.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, GatehouseError } from './errors.js';
import { loadConfigFile, loadDefaultConfig } from './config/load.js';
import { configJsonSchema } from './config/json-schema.js';
import type { GatehouseConfig } from './config/schema.js';
import { Gateway } from './gateway.js';
import { HASH_PASSWORD_USAGE, hashPasswordCommand } from './auth/hash-password-command.js';
import { roleOf, runPrimary, runWorker } from './start.js';
import { clusterPart } from './cluster-setup.js';
import { createLogger } from './observe/log.js';

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

function printConfigError(err: unknown): void {
  if (err instanceof ConfigError) {
    console.error(`gatehouse: ${err.message}`);
    for (const issue of err.issues) console.error(`  - ${issue}`);
  } else {
    console.error(`gatehouse: ${(err as Error).message}`);
  }
}

function readConfig(file: string | undefined): GatehouseConfig {
  return file ? loadConfigFile(file) : loadDefaultConfig();
}

function urlOf(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The built-in default's admin token is made at start unless GATEHOUSE_ADMIN_TOKEN
 * sets one: the dashboard link carries it in the fragment (never sent to a server).
 */
function adminTokenHint(config: GatehouseConfig, file: string | undefined): string {
  if (file || !config.admin?.token || process.env.GATEHOUSE_ADMIN_TOKEN) return '';
  return `#token=${config.admin.token}`;
}

const start: Command = {
  summary: 'start the gateway',
  usage: 'gatehouse start [--config FILE]   (without --config: the built-in default, echo on 127.0.0.1:8080)',
  async run(args) {
    const file = option(args, '--config');
    let config: GatehouseConfig;
    try { config = readConfig(file); } catch (err) { printConfigError(err); return 1; }
    const role = roleOf(config);
    if (role === 'primary') return runPrimary(file, config, announce);
    if (role === 'worker') return runWorker(file, config);
    const log = createLogger(config.log.level);
    const part = await clusterPart(config, log);
    let gw: Gateway;
    try {
      gw = await Gateway.start(config, { logger: log, ...part.gateway, configSource: file ? () => loadConfigFile(file) : undefined });
    } catch (err) {
      // A file the config names is missing or unusable: a clear line, not a stack trace.
      if (!(err instanceof GatehouseError)) throw err;
      printConfigError(err);
      await part.close();
      return 1;
    }
    await part.attach(gw);
    process.on('SIGHUP', () => {
      void gw.reloadFromSource().then((r) => {
        if (!r.ok && r.status === 409) gw.log.warn('SIGHUP: running on the built-in config, nothing to reload');
      });
    });
    return new Promise<number>((resolve) => {
      const stop = (signal: string) => {
        gw.log.info({ signal }, 'shutdown requested');
        gw.stop().catch((err: unknown) => { gw.log.error({ err }, 'shutdown failed'); resolve(1); });
      };
      // A signal or the admin API's drain: the process ends when the gateway has stopped.
      void gw.stopped.then(() => part.close()).then(() => resolve(0));
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // Announced only once the signals are handled: whoever waits for this line may signal at once.
      announce(gw.addresses);
      const admin = gw.admin?.address;
      if (admin) process.stderr.write(`gatehouse: admin on ${urlOf('http', admin.host, admin.port)}/${adminTokenHint(config, file)}\n`);
    });
  },
};

function announce(addresses: Gateway['addresses']): void {
  for (const a of addresses) process.stderr.write(`gatehouse: listening on ${urlOf(a.tls ? 'https' : 'http', a.host, a.port)}/\n`);
}

const check: Command = {
  summary: 'validate a configuration file and the files it names (certificates, keys, users files)',
  usage: 'gatehouse check --config FILE',
  async run(args) {
    const file = option(args, '--config');
    if (!file) { console.error(`usage: ${this.usage}`); return 2; }
    try {
      const config = loadConfigFile(file);
      Gateway.validate(config);
      console.log(`${file}: ok (${Object.keys(config.services).length} services, ${config.listen.length} listeners)`);
      return 0;
    } catch (err) {
      printConfigError(err);
      return 1;
    }
  },
};

const hashPassword: Command = {
  summary: 'hash a password (read from stdin) for a basic-auth users file',
  usage: HASH_PASSWORD_USAGE.replace(/^usage: /, ''),
  run: (args) => hashPasswordCommand(args, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }),
};

const schema: Command = {
  summary: 'print the JSON Schema of the configuration file (for editors: gatehouse schema > gatehouse.schema.json)',
  usage: 'gatehouse schema',
  run() {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return Promise.resolve(0);
  },
};

export const COMMANDS: Record<string, Command> = { start, check, schema, 'hash-password': hashPassword };

function help(): void {
  console.log('gatehouse — a secure WebSocket gateway\n\nCommands:');
  for (const [name, c] of Object.entries(COMMANDS)) console.log(`  ${name.padEnd(14)} ${c.summary}\n  ${''.padEnd(14)} ${c.usage}`);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--version' || name === '-v') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') { help(); return name ? 0 : 2; }
  const command = COMMANDS[name];
  if (!command) { console.error(`gatehouse: unknown command "${name}"`); help(); return 2; }
  return command.run(args);
}
