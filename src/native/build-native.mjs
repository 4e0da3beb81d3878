#!/usr/bin/env node
/**
 * Builds the native addons into dist/native (run by `npm ci` through "prepare", or by
 * `npm run build:native`):
 *   sendfile.node       from sendfile.c: cached blobs sent by sendfile(2) (http/sendfile-addon.ts)
 *   malloc-tuning.node  from malloc-tuning.c: glibc's trim threshold while uploads stream (http/body-heap.ts)
 * Both are optional: without sendfile, blob bodies are copied through user space; without the
 * tuning, uploads cost more CPU; both correct. So this script never fails an install: it
 * says which addon it skipped and why.
 *
 * It calls the C compiler directly rather than through node-gyp, which would download Node's
 * headers from nodejs.org: the headers Node installs beside itself (include/node: node_api.h,
 * uv.h) are all a Node-API addon needs, and the machines this runs on may have no internet.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outputDirectory = resolve(here, '../../dist/native');

const ADDONS = [
  { name: 'sendfile', without: 'cached blobs will be copied through user space', skip: process.env.REGISTRY_MIRROR_SKIP_SENDFILE === '1' && 'REGISTRY_MIRROR_SKIP_SENDFILE=1' },
  { name: 'malloc-tuning', without: 'uploads will cost more CPU (page faults)', skip: false },
];

function headerDirectory() {
  const candidates = [
    process.env.NODE_INCLUDE_DIR,
    resolve(dirname(process.execPath), '../include/node'),
    process.config.variables.node_prefix && join(process.config.variables.node_prefix, 'include/node'),
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'uv.h')));
}

function skipped(addon, reason) {
  console.warn(`registry-mirror: ${addon.name} addon not built (${reason}); ${addon.without}.`);
}

/** Why nothing can be built here, or undefined. */
function unbuildable(include) {
  if (process.platform !== 'linux') return `these addons are Linux-only, this is ${process.platform}`;
  if (!include) return 'no Node headers (include/node/node_api.h and uv.h) beside this Node; set NODE_INCLUDE_DIR';
  return undefined;
}

function build(addon, include) {
  const compiler = process.env.CC || 'cc';
  const output = join(outputDirectory, `${addon.name}.node`);
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    // -fvisibility=hidden: only napi_register_module_v1 is exported; Node provides the napi_* and uv_* symbols.
    execFileSync(compiler, ['-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Wno-unused-parameter', '-std=gnu11', `-I${include}`, '-o', temporary, join(here, `${addon.name}.c`)], { stdio: ['ignore', 'inherit', 'inherit'] });
    renameSync(temporary, output);
    console.log(`registry-mirror: built ${output}`);
  } catch (error) {
    rmSync(temporary, { force: true });
    skipped(addon, error.code === 'ENOENT' ? `no C compiler: ${compiler} not found` : `${compiler} failed: ${error.message.split('\n')[0]}`);
  }
}

const include = headerDirectory();
const reason = unbuildable(include);
mkdirSync(outputDirectory, { recursive: true });
for (const addon of ADDONS) {
  if (addon.skip) skipped(addon, addon.skip);
  else if (reason) skipped(addon, reason);
  else build(addon, include);
}
