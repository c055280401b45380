#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ keeps the compiled code of the CLI's modules on disk, so later runs start sooner.
module.enableCompileCache?.();
const { main } = await import('../dist/cli/index.js');

process.exitCode = await main(process.argv);
