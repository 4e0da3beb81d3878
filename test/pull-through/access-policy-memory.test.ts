/**
 * The warm path of an anonymous client (pull-through/access-policy.ts): a repository already
 * judged readable and a digest already seen linked to it are answered from memory, without a
 * metadata-store lookup per request (each one cost the warm 3 MiB path SQLite's locks and reads;
 * issue 16 item 4). What the store has not confirmed is looked up every time: only positive
 * answers are remembered, and only for the probe TTL.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalFlights } from '../../src/coordination/flights.js';
import { proxiedTarget, repositoryKey } from '../../src/domain/target.js';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import { AccessPolicy, type AnonymousProbe, type ProbeObject } from '../../src/pull-through/access-policy.js';

const UPSTREAM = 'docker.io';
const PUBLIC = proxiedTarget(UPSTREAM, 'library/alpine');
const LAYER = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const TTL_MS = 60_000;
const TAG = { endpoint: 'manifests', reference: 'latest' } as const;

/** A policy on a memory metadata store; `answer` is the upstream's anonymous answer (default: everything readable). */
function setUp(answer: AnonymousProbe['probeAnonymous'] = async () => 'readable') {
  const metadata = new MemoryMetadataStore();
  const probed: Array<{ repository: string; object: ProbeObject }> = [];
  const probe: AnonymousProbe = {
    async probeAnonymous(repository, object) {
      probed.push({ repository, object });
      return answer(repository, object);
    },
  };
  const has = vi.spyOn(metadata.links, 'has');
  const policy = new AccessPolicy({
    probes: new Map([[UPSTREAM, probe]]),
    guarded: new Set([UPSTREAM]),
    verdicts: metadata.verdicts,
    links: metadata.links,
    flights: new LocalFlights(),
    deadlineMs: 5_000,
    probeTtlMs: TTL_MS,
    // Held: a digest that is not linked must be confirmed by a probe, never served on trust.
    isLocal: async () => true,
  });
  const blob = (digest: string) => ({ endpoint: 'blobs', reference: digest }) as const;
  return { metadata, policy, probed, has, blob };
}

describe('access policy: what an anonymous warm request looks up', () => {
  afterEach(() => vi.useRealTimers());

  it('asks the link store once for a linked digest, then answers from memory, synchronously too', async () => {
    const { metadata, policy, probed, has, blob } = setUp();
    await metadata.links.add(repositoryKey(PUBLIC), LAYER);
    expect(policy.allowedFromMemory(PUBLIC, TAG)).toBe(false);
    // The repository's probe, made for its tag.
    expect(await policy.check(PUBLIC, TAG)).toBe('allowed');
    expect(policy.allowedFromMemory(PUBLIC, TAG)).toBe(true);
    expect(policy.allowedFromMemory(PUBLIC, blob(LAYER))).toBe(false);

    expect(await policy.check(PUBLIC, blob(LAYER))).toBe('allowed');
    expect(has.mock.calls).toHaveLength(1);
    expect(policy.allowedFromMemory(PUBLIC, blob(LAYER))).toBe(true);
    for (let i = 0; i < 5; i++) expect(await policy.check(PUBLIC, blob(LAYER))).toBe('allowed');
    expect(has.mock.calls).toHaveLength(1);
    expect(probed).toEqual([{ repository: PUBLIC.repository, object: { kind: 'manifest', reference: 'latest' } }]);
  });

  it('remembers no absence: a digest not linked is looked up, then probed', async () => {
    const { metadata, policy, probed, has, blob } = setUp();
    await metadata.links.add(repositoryKey(PUBLIC), LAYER);
    await policy.check(PUBLIC, TAG);
    // Not linked: looked up, then the probe decides (readable here) and links it.
    expect(policy.allowedFromMemory(PUBLIC, blob(OTHER))).toBe(false);
    const before = has.mock.calls.length;
    expect(await policy.check(PUBLIC, blob(OTHER))).toBe('allowed');
    expect(has.mock.calls.length).toBeGreaterThan(before);
    expect(probed.filter((entry) => entry.object.kind === 'blob' && entry.object.digest === OTHER)).toHaveLength(1);
    expect(await metadata.links.has(repositoryKey(PUBLIC), OTHER)).toBe(true);
    expect(policy.allowedFromMemory(PUBLIC, blob(OTHER))).toBe(true);
  });

  it('forgets what it remembered after the probe TTL, and the repository verdict with it', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { metadata, policy, probed, blob } = setUp();
    await metadata.links.add(repositoryKey(PUBLIC), LAYER);
    await policy.check(PUBLIC, TAG);
    await policy.check(PUBLIC, blob(LAYER));
    expect(policy.allowedFromMemory(PUBLIC, blob(LAYER))).toBe(true);
    vi.setSystemTime(Date.now() + TTL_MS + 1);
    expect(policy.allowedFromMemory(PUBLIC, blob(LAYER))).toBe(false);
    expect(policy.allowedFromMemory(PUBLIC, TAG)).toBe(false);
    // Checked again as on a first request: the repository is probed again.
    expect(await policy.check(PUBLIC, blob(LAYER))).toBe('allowed');
    expect(probed).toHaveLength(2);
    expect(policy.allowedFromMemory(PUBLIC, blob(LAYER))).toBe(true);
  });

  it('does not hand out a digest held only through a private repository under a public name, however often asked', async () => {
    const PRIVATE = proxiedTarget(UPSTREAM, 'testuser/private');
    // Anonymous access reads the public repository, which does not have the private layer.
    const { metadata, policy } = setUp(async (repository, object) => (repository === PRIVATE.repository ? 'refused' : object.kind === 'blob' && object.digest === OTHER ? 'missing' : 'readable'));
    await metadata.links.add(repositoryKey(PRIVATE), OTHER);
    await policy.check(PUBLIC, TAG);
    for (let i = 0; i < 3; i++) {
      await expect(policy.check(PUBLIC, { endpoint: 'blobs', reference: OTHER })).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      expect(policy.allowedFromMemory(PUBLIC, { endpoint: 'blobs', reference: OTHER })).toBe(false);
    }
  });

  it('never answers from memory for a repository judged refused', async () => {
    const { metadata, policy } = setUp(async () => 'refused');
    const target = proxiedTarget(UPSTREAM, 'testuser/private');
    await metadata.links.add(repositoryKey(target), LAYER);
    await expect(policy.check(target, { endpoint: 'blobs', reference: LAYER })).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    expect(policy.allowedFromMemory(target, { endpoint: 'blobs', reference: LAYER })).toBe(false);
    expect(policy.allowedFromMemory(target, TAG)).toBe(false);
    // An upstream the policy was given no client for is not its business.
    expect(policy.allowedFromMemory(proxiedTarget('gcr.io', 'distroless/static'), { endpoint: 'blobs', reference: LAYER })).toBe(true);
  });

  it('under an upstream without credentials: no repository probe, but a held digest is served only once linked to a readable repository or confirmed by that upstream', async () => {
    const metadata = new MemoryMetadataStore();
    const asked: string[] = [];
    const open: AnonymousProbe = {
      async probeAnonymous(repository, object) {
        asked.push(`${repository} ${object.kind}`);
        return 'missing';
      },
    };
    const policy = new AccessPolicy({
      probes: new Map([[UPSTREAM, { probeAnonymous: async () => 'readable' as const }], ['quay.io', open]]),
      guarded: new Set([UPSTREAM]),
      verdicts: metadata.verdicts, links: metadata.links, flights: new LocalFlights(), deadlineMs: 5_000, probeTtlMs: TTL_MS, isLocal: async () => true,
    });
    const target = proxiedTarget('quay.io', 'team/tools');
    expect(await policy.knowsRepository(target)).toBe(true);
    expect(await policy.check(target, TAG)).toBe('allowed');
    // Linked only to a hosted repository whose name begins like the upstream's: no repository of it.
    await metadata.links.add('quay.iox', LAYER);
    await expect(policy.check(target, { endpoint: 'blobs', reference: LAYER })).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect(asked).toEqual(['team/tools blob']);
    expect(policy.allowedFromMemory(target, { endpoint: 'blobs', reference: LAYER })).toBe(false);
    // Linked to another repository of that upstream: anyone can read it there, so no probe.
    await metadata.links.add('quay.io/other/repo', OTHER);
    expect(await policy.check(target, { endpoint: 'blobs', reference: OTHER })).toBe('allowed');
    expect(asked).toHaveLength(1);
    expect(policy.allowedFromMemory(target, { endpoint: 'blobs', reference: OTHER })).toBe(true);
  });
});
