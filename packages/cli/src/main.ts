#!/usr/bin/env node
/** The `opsplane` binary. */
import { run } from './cli.js';

const code = await run(process.argv.slice(2));
// Daemons resolve only once stopped; exit explicitly so stray handles (sockets in teardown) cannot hold the process.
process.exit(code);
