/**
 * glibc's heap while upload bodies stream in (src/native/malloc-tuning.c says why: every chunk
 * Node's HTTP parser hands JavaScript is a fresh 64 KiB malloc, V8 frees them in batches of tens
 * of MiB, and glibc's default trim threshold returns each batch to the kernel only for the next
 * to fault every page in again).
 *
 * The trim threshold is raised while at least one upload body is being received, and set back,
 * with the free memory returned (malloc_trim), a moment after the last one ends. A push then
 * reuses the pages of the chunks before it: 130,000 to 200,000 page faults fewer per GiB, a
 * quarter to a third less CPU (docs/benchmarks.md, "Where a push's CPU goes"). Only uploads: the same setting
 * for the whole process also sped up misses, but kept each streaming process's last batch
 * resident, 120 MB more RSS in the memory benchmark (50 clients on a 1 GiB blob), whose budget
 * the mirror already exceeds.
 *
 * An operator who set the threshold (glibc's `MALLOC_TRIM_THRESHOLD_`, or
 * `glibc.malloc.trim_threshold` in `GLIBC_TUNABLES`) keeps it: nothing changes.
 * Without the addon (not built, not Linux) or off glibc nothing changes either, and
 * `bodyHeapStatus` says why for the start-up log.
 */
import { loadNativeAddon } from './native-addon.js';

/** Above one batch: V8 collects once external memory has grown by about 64 MiB. */
export const STREAMING_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024;
/**
 * glibc's default (mallopt(3), M_TRIM_THRESHOLD), set back when no upload streams. Unset, glibc
 * would also raise it by itself as large mmap()ed chunks are freed; once set it stays where it is
 * put, which for a process that has pushed is this default between uploads.
 */
export const DEFAULT_TRIM_THRESHOLD_BYTES = 128 * 1024;
/** How long after the last upload ended the default comes back: an image's layers pushed one after another keep the pages. */
export const SETTLE_MS = 2_000;

/** What the addon does (src/native/malloc-tuning.c); each says whether glibc did it. */
export interface MallocControls {
  /** Whether the addon was built against glibc (the only C library with these settings). */
  readonly glibc: boolean;
  setTrimThreshold(bytes: number): boolean;
  trim(): boolean;
}

export type BodyHeapStatus = { tuned: true } | { tuned: false; reason: string };

export class BodyHeap {
  #streaming = 0;
  #raised = false;
  #settle: NodeJS.Timeout | undefined;

  constructor(private readonly controls: MallocControls | undefined) {}

  /** Call as a body starts streaming in; call what it returns once the body has ended (once; more calls do nothing). */
  hold(): () => void {
    const controls = this.controls;
    if (!controls) return () => {};
    this.#streaming += 1;
    clearTimeout(this.#settle);
    this.#settle = undefined;
    if (!this.#raised) this.#raised = controls.setTrimThreshold(STREAMING_TRIM_THRESHOLD_BYTES);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#streaming -= 1;
      if (this.#streaming > 0 || !this.#raised) return;
      this.#settle = setTimeout(() => this.#restore(controls), SETTLE_MS);
      this.#settle.unref();
    };
  }

  #restore(controls: MallocControls): void {
    this.#settle = undefined;
    this.#raised = false;
    controls.setTrimThreshold(DEFAULT_TRIM_THRESHOLD_BYTES);
    controls.trim();
  }
}

function load(env: NodeJS.ProcessEnv): { controls?: MallocControls; status: BodyHeapStatus } {
  if (env.MALLOC_TRIM_THRESHOLD_) return { status: { tuned: false, reason: `MALLOC_TRIM_THRESHOLD_=${env.MALLOC_TRIM_THRESHOLD_} is set` } };
  if (env.GLIBC_TUNABLES?.includes('glibc.malloc.trim_threshold')) return { status: { tuned: false, reason: 'GLIBC_TUNABLES sets glibc.malloc.trim_threshold' } };
  const loaded = loadNativeAddon<MallocControls>('malloc-tuning');
  if (!loaded.addon) return { status: { tuned: false, reason: `malloc-tuning addon ${loaded.reason}` } };
  if (!loaded.addon.glibc) return { status: { tuned: false, reason: 'the C library is not glibc' } };
  return { controls: loaded.addon, status: { tuned: true } };
}

const loaded = load(process.env);

/** The process's one policy, used by every upload body (hosted/upload-body.ts). */
export const bodyHeap = new BodyHeap(loaded.controls);
export const bodyHeapStatus: BodyHeapStatus = loaded.status;
