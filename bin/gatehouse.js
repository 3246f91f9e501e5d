#!/usr/bin/env -S node --max-semi-space-size=4
// The `gatehouse` command: the compiled CLI (built by `npm run build`, run on install).
//
// The flag on the first line is part of the product, not a tuning accident:
// V8 lets its young generation grow to 16 MiB semi-spaces under a burst of
// allocation (a storm of handshakes is one), and never gives that memory
// back while the gateway then sits on thousands of idle connections. Capping
// it at 4 MiB keeps ~1.5 KiB per connection out of RSS at 10,000 connections;
// the cost, more minor GCs under many small messages, stayed within benchmark
// noise (bench/RESULTS.md, "Young generation"; docs/operations.md).
// `node bin/gatehouse.js …` bypasses this line: pass the flag yourself then.
import '../dist/main.js';
