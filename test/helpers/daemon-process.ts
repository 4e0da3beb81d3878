/**
 * Waiting for daemons and stopping them by PID (never by name: other suites and other people's
 * daemons run on the same machine).
 */
export async function s3Answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status < 500;
  } catch {
    return false;
  }
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${message} within ${timeoutMs} ms`);
}

export function signal(pid: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, up to 10 s for a clean exit, then SIGKILL: only the PIDs this launcher started. */
export async function stopPids(pids: number[]): Promise<void> {
  const alive = pids.filter((pid) => signal(pid, 'SIGTERM'));
  const deadline = Date.now() + 10_000;
  while (alive.some((pid) => signal(pid, 0)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const pid of alive) signal(pid, 'SIGKILL');
}
