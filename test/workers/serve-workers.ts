/** `node dist/main.js serve --workers N` as a child process, its JSON log lines collected (the workers tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ensureMirrorBuilt, NODE_FLAGS, REPO_ROOT } from '../interop/support/mirror.js';

export interface Served {
  child: ChildProcess;
  url: string;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export async function serveWorkers(configFile: string, workers: number): Promise<Served> {
  ensureMirrorBuilt();
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(REPO_ROOT, 'dist', 'main.js'), 'serve', '--config', configFile, '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening line within 30 s')), 30_000);
    void exited.then((code) => reject(new Error(`serve exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve(String(entry.url));
      }
    });
  });
  return { child, url, lines, exited };
}
