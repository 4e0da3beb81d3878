/**
 * A disk that fills up, through the content store's file seam (src/storage/fs/fs-writer.ts
 * `fsWriterFiles`): no root and no tiny tmpfs needed. Every file a writer opens from now on
 * accepts `allowedWrites` writes (on the event loop or the thread pool alike), then fails with
 * ENOSPC. Undo with `vi.restoreAllMocks()`.
 */
import { vi } from 'vitest';
import { fsWriterFiles } from '../../src/storage/fs/fs-writer.js';

export function diskFillsUpAfter(allowedWrites: number): void {
  const { openSync, writeSync, write } = fsWriterFiles;
  const writesByFd = new Map<number, number>();
  const check = (fd: number) => {
    const writes = writesByFd.get(fd);
    if (writes === undefined) return;
    writesByFd.set(fd, writes + 1);
    if (writes >= allowedWrites) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  };
  vi.spyOn(fsWriterFiles, 'openSync').mockImplementation((file, flags) => {
    const fd = openSync(file, flags);
    writesByFd.set(fd, 0);
    return fd;
  });
  vi.spyOn(fsWriterFiles, 'writeSync').mockImplementation((fd, ...rest) => {
    check(fd);
    return writeSync(fd, ...rest);
  });
  vi.spyOn(fsWriterFiles, 'write').mockImplementation(async (fd, ...rest) => {
    check(fd);
    return write(fd, ...rest);
  });
}
