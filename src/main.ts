#!/usr/bin/env node
/** The `registry-mirror` command line. */
import { Command } from 'commander';
import { ConfigError } from './config/mirror-config.js';
import { serveCommand } from './cli/serve.js';

const program = new Command()
  .name('registry-mirror')
  .description('Pull-through caching mirror for OCI container registries');

program
  .command('serve')
  .description('serve the OCI distribution API from the cache, pulling through from upstreams')
  .option('-c, --config <file>', 'configuration file (default: $MIRROR_CONFIG or ./mirror.config.json)')
  .option('--offline', 'never contact an upstream; serve only what is cached')
  .action(serveCommand);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`registry-mirror: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`registry-mirror: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
