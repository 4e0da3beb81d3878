#!/usr/bin/env node
/**
 * Builds dist/native/sendfile.node from sendfile.c (run by `npm ci` through "prepare", or by
 * `npm run build:native`). The addon is optional: without it blob bodies are copied through user
 * space, slower but correct, so this script never fails an install. It says why it skipped.
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
const source = join(here, 'sendfile.c');
const output = resolve(here, '../../dist/native/sendfile.node');

function headerDirectory() {
  const candidates = [
    process.env.NODE_INCLUDE_DIR,
    resolve(dirname(process.execPath), '../include/node'),
    process.config.variables.node_prefix && join(process.config.variables.node_prefix, 'include/node'),
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'uv.h')));
}

function skip(reason) {
  console.warn(`registry-mirror: sendfile addon not built (${reason}); cached blobs will be copied through user space.`);
  process.exit(0);
}

if (process.env.REGISTRY_MIRROR_SKIP_SENDFILE === '1') skip('REGISTRY_MIRROR_SKIP_SENDFILE=1');
if (process.platform !== 'linux') skip(`sendfile(2) with these semantics is Linux-only, this is ${process.platform}`);
const include = headerDirectory();
if (!include) skip("no Node headers (include/node/node_api.h and uv.h) beside this Node; set NODE_INCLUDE_DIR");

const compiler = process.env.CC || 'cc';
const temporary = `${output}.${process.pid}.tmp`;
mkdirSync(dirname(output), { recursive: true });
try {
  // -fvisibility=hidden: only napi_register_module_v1 is exported; Node provides the napi_* and uv_* symbols.
  execFileSync(compiler, ['-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Wno-unused-parameter', '-std=gnu11', `-I${include}`, '-o', temporary, source], { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(temporary, output);
} catch (error) {
  rmSync(temporary, { force: true });
  skip(error.code === 'ENOENT' ? `no C compiler: ${compiler} not found` : `${compiler} failed: ${error.message.split('\n')[0]}`);
}
console.log(`registry-mirror: built ${output}`);
