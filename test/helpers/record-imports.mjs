// `node --import <this>`: appends every module URL the process's ESM imports resolve to (one per
// line) to the file named by RECORD_IMPORTS_TO. Node 20's module hooks see `import`, not the
// `require` calls inside CommonJS packages, which is what test/workers/serve-footprint.test.ts
// needs: which packages the mirror's own modules load.
import { register } from 'node:module';

const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(${JSON.stringify(process.env.RECORD_IMPORTS_TO)}, resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
