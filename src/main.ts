/** Process entry: runs the CLI and exits with its status. */
import { main } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Whatever might still hold the event loop must not keep a stopped gateway alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err) => { console.error(err); process.exit(1); },
);
