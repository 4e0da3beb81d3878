#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The `registry-mirror` command line. Each command's module is loaded when that command runs:
 * the server then carries none of the archive, progress-bar and report code of the others
 * (RSS is a budget the memory benchmark checks).
 */
import { Command } from 'commander';
import { ConfigError } from './config/mirror-config.js';
import { CommandFailedError, UsageError } from './cli/usage-error.js';
import { MirrorError } from './domain/errors.js';

/** Defers loading a command's module (and everything it imports) until the command runs. */
function lazy(load: () => Promise<(...args: never[]) => unknown>) {
  return async function runCommand(...args: unknown[]): Promise<void> {
    // commander passes the arguments and options each command declares below.
    await (await load())(...(args as never[]));
  };
}

const CONFIG_HELP = 'configuration file (default: $MIRROR_CONFIG or ./mirror.config.json)';

const program = new Command()
  .name('registry-mirror')
  .description('Pull-through caching mirror for OCI container registries');

program
  .command('serve')
  .description('serve the OCI distribution API from the cache, pulling through from upstreams')
  .option('-c, --config <file>', 'configuration file (default: $MIRROR_CONFIG or ./mirror.config.json)')
  .option('--offline', 'never contact an upstream; serve only what is cached')
  .option('--workers <n>', 'processes sharing the port, coordinating downloads among themselves (default: the number of CPU cores)')
  .action(lazy(() => import('./cli/serve.js').then((module) => module.serveCommand)));

program
  .command('warm')
  .description('pull images (every platform by default) into the cache, e.g. for an air-gapped mirror')
  .argument('[image...]', 'image references: alpine:3.20, gcr.io/distroless/static:nonroot, name@sha256:...')
  .option('-f, --file <file>', 'read image references from a file, one per line (# starts a comment; - for stdin)')
  .option('--platform <list>', 'only these platforms: os/arch[/variant][,...]')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/warm.js').then((module) => module.warmCommand)));

program
  .command('export')
  .description('write cached images as an OCI image layout tar')
  .argument('[image...]', 'image references to export')
  .requiredOption('-o, --out <file>', 'archive to write (- for stdout)')
  .option('--all', 'export every tag the cache knows')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/export.js').then((module) => module.exportCommand)));

program
  .command('import')
  .description('load an OCI image layout tar (from export or skopeo oci-archive:) into the cache')
  .argument('<file>', 'archive to read (- for stdin)')
  .option('--retag', 're-point tags the cache already has to the archive\'s content (without it such tags are left as they are and reported)')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/import.js').then((module) => module.importCommand)));

program
  .command('verify')
  .description('re-hash cached blobs and manifests and remove any that do not match (exit 1 if any were removed)')
  .option('--json', 'print the report as JSON')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/verify.js').then((module) => module.verifyCommand)));

program
  .command('prune')
  .description('evict least recently used blobs until the cache fits, with the server stopped')
  .requiredOption('--max-bytes <size>', 'the size to shrink to: a byte count or e.g. "10GiB", "500MB"')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/prune.js').then((module) => module.pruneCommand)));

program
  .command('gc')
  .description('delete hosted blobs and untagged manifests nothing references, and expired uploads (safe while serve runs)')
  .option('--dry-run', 'report what would be deleted, delete nothing')
  .option('--json', 'print the report as JSON')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/gc.js').then((module) => module.gcCommand)));

program
  .command('stats')
  .description('print cache size, blob/manifest/tag counts, hit ratio and top repositories')
  .option('--json', 'print JSON')
  .option('--top <n>', 'how many repositories to list (default 10)')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(lazy(() => import('./cli/stats.js').then((module) => module.statsCommand)));

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof UsageError) {
    process.stderr.write(`registry-mirror: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof MirrorError || error instanceof CommandFailedError) {
    process.stderr.write(`registry-mirror: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`registry-mirror: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
