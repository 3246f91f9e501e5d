#!/usr/bin/env node
// The `gatehouse` command: the compiled CLI (built by `npm run build`, run on install).
import '../dist/main.js';
