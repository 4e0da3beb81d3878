/**
 * When the malloc trim threshold is raised and set back (http/body-heap.ts): raised by the first
 * upload body, kept while any streams and for SETTLE_MS after the last (an image's layers one after
 * another), then set back to glibc's default with the free memory returned.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BodyHeap, DEFAULT_TRIM_THRESHOLD_BYTES, SETTLE_MS, STREAMING_TRIM_THRESHOLD_BYTES, type MallocControls } from '../../src/http/body-heap.js';

function recordingControls(glibc = true): MallocControls & { calls: string[] } {
  const calls: string[] = [];
  return {
    glibc,
    calls,
    setTrimThreshold: (bytes) => (calls.push(`threshold ${bytes}`), glibc),
    trim: () => (calls.push('trim'), glibc),
  };
}

const RAISE = `threshold ${STREAMING_TRIM_THRESHOLD_BYTES}`;
const RESTORE = `threshold ${DEFAULT_TRIM_THRESHOLD_BYTES}`;

describe('BodyHeap', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('raises the threshold for the first body and sets it back, trimming, SETTLE_MS after the last ends', () => {
    const controls = recordingControls();
    const heap = new BodyHeap(controls);
    const first = heap.hold();
    const second = heap.hold();
    expect(controls.calls).toEqual([RAISE]);
    first();
    vi.advanceTimersByTime(SETTLE_MS * 2);
    expect(controls.calls).toEqual([RAISE]);
    second();
    vi.advanceTimersByTime(SETTLE_MS - 1);
    expect(controls.calls).toEqual([RAISE]);
    vi.advanceTimersByTime(1);
    expect(controls.calls).toEqual([RAISE, RESTORE, 'trim']);
  });

  it('a body that starts within SETTLE_MS of the last keeps the raised threshold, without raising it again', () => {
    const controls = recordingControls();
    const heap = new BodyHeap(controls);
    heap.hold()();
    vi.advanceTimersByTime(SETTLE_MS - 1);
    const next = heap.hold();
    vi.advanceTimersByTime(SETTLE_MS * 2);
    expect(controls.calls).toEqual([RAISE]);
    next();
    vi.advanceTimersByTime(SETTLE_MS);
    expect(controls.calls).toEqual([RAISE, RESTORE, 'trim']);
    heap.hold();
    expect(controls.calls).toEqual([RAISE, RESTORE, 'trim', RAISE]);
  });

  it('a release called twice counts once', () => {
    const controls = recordingControls();
    const heap = new BodyHeap(controls);
    const first = heap.hold();
    const second = heap.hold();
    first();
    first();
    vi.advanceTimersByTime(SETTLE_MS);
    expect(controls.calls).toEqual([RAISE]);
    second();
    vi.advanceTimersByTime(SETTLE_MS);
    expect(controls.calls).toEqual([RAISE, RESTORE, 'trim']);
  });

  it('does nothing more when the C library refused the setting, or without the addon', () => {
    const refusing = recordingControls(false);
    new BodyHeap(refusing).hold()();
    vi.advanceTimersByTime(SETTLE_MS);
    expect(refusing.calls).toEqual([RAISE]);
    const release = new BodyHeap(undefined).hold();
    expect(() => release()).not.toThrow();
    expect(vi.getTimerCount()).toBe(0);
  });
});
