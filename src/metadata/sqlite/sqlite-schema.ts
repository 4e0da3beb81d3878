/**
 * The one description of metadata.db's schema, as migrations keyed by version. `PRAGMA
 * user_version` records the version a file has; opening applies the missing migrations in one
 * IMMEDIATE transaction (so two processes opening a new file at once do not both create it) and
 * refuses a file from a newer release.
 *
 * Every hot lookup is a primary-key or index search (test/metadata/sqlite-query-plans.test.ts
 * checks the plans): tags by (repository, tag), catalog and tag pages by name, links both ways,
 * referrers by subject then link, the LRU by a partial index over blobs that are not retained.
 * Totals (tags, repositories with tags, blob count and bytes, verdicts, usage) live in the
 * one-row `totals` table, kept by triggers in the same transaction as the change, so reading
 * them never scans a table.
 *
 * Column names avoid SQL keywords (`refs`, `received`). Small rows are WITHOUT ROWID tables
 * (the primary key is the row); manifests, which can be large, keep a rowid.
 */
import type Database from 'better-sqlite3';
import { MetadataSchemaError } from '../metadata-errors.js';

const VERSION_1 = `
CREATE TABLE totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  tags INTEGER NOT NULL DEFAULT 0,
  tag_repositories INTEGER NOT NULL DEFAULT 0,
  blobs INTEGER NOT NULL DEFAULT 0,
  blob_bytes INTEGER NOT NULL DEFAULT 0,
  retained_bytes INTEGER NOT NULL DEFAULT 0,
  verdicts INTEGER NOT NULL DEFAULT 0,
  pulls INTEGER NOT NULL DEFAULT 0,
  hits INTEGER NOT NULL DEFAULT 0,
  misses INTEGER NOT NULL DEFAULT 0
);
INSERT INTO totals (id) VALUES (1);

CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE repositories (name TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE tags (
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  checked_at INTEGER NOT NULL,
  PRIMARY KEY (repository, tag)
) WITHOUT ROWID;
CREATE TABLE tag_counts (repository TEXT PRIMARY KEY, tags INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER tags_inserted AFTER INSERT ON tags BEGIN
  UPDATE totals SET tags = tags + 1;
  INSERT INTO tag_counts (repository, tags) VALUES (new.repository, 1)
    ON CONFLICT (repository) DO UPDATE SET tags = tags + 1;
END;
CREATE TRIGGER tags_deleted AFTER DELETE ON tags BEGIN
  UPDATE totals SET tags = tags - 1;
  UPDATE tag_counts SET tags = tags - 1 WHERE repository = old.repository;
  DELETE FROM tag_counts WHERE repository = old.repository AND tags = 0;
END;
CREATE TRIGGER tag_counts_inserted AFTER INSERT ON tag_counts BEGIN
  UPDATE totals SET tag_repositories = tag_repositories + 1;
END;
CREATE TRIGGER tag_counts_deleted AFTER DELETE ON tag_counts BEGIN
  UPDATE totals SET tag_repositories = tag_repositories - 1;
END;

CREATE TABLE links (repository TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repository, digest)) WITHOUT ROWID;
CREATE INDEX links_by_digest ON links (digest, repository);

CREATE TABLE manifests (
  digest TEXT PRIMARY KEY,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  refs TEXT NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT
);
CREATE INDEX manifests_by_subject ON manifests (subject) WHERE subject IS NOT NULL;

CREATE TABLE blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  used_at INTEGER NOT NULL,
  retained INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX blobs_lru ON blobs (used_at, digest) WHERE retained = 0;
CREATE TRIGGER blobs_inserted AFTER INSERT ON blobs BEGIN
  UPDATE totals SET blobs = blobs + 1, blob_bytes = blob_bytes + new.size, retained_bytes = retained_bytes + new.size * new.retained;
END;
CREATE TRIGGER blobs_deleted AFTER DELETE ON blobs BEGIN
  UPDATE totals SET blobs = blobs - 1, blob_bytes = blob_bytes - old.size, retained_bytes = retained_bytes - old.size * old.retained;
END;
CREATE TRIGGER blobs_updated AFTER UPDATE OF size, retained ON blobs BEGIN
  UPDATE totals SET blob_bytes = blob_bytes + new.size - old.size,
    retained_bytes = retained_bytes + new.size * new.retained - old.size * old.retained;
END;

CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  repository TEXT NOT NULL,
  writer_id TEXT NOT NULL,
  received INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_update ON uploads (updated_at);

CREATE TABLE verdicts (
  repository TEXT PRIMARY KEY,
  readable INTEGER NOT NULL,
  checked_at INTEGER NOT NULL,
  set_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX verdicts_by_expiry ON verdicts (expires_at);
CREATE INDEX verdicts_by_age ON verdicts (set_at);
CREATE TRIGGER verdicts_inserted AFTER INSERT ON verdicts BEGIN UPDATE totals SET verdicts = verdicts + 1; END;
CREATE TRIGGER verdicts_deleted AFTER DELETE ON verdicts BEGIN UPDATE totals SET verdicts = verdicts - 1; END;

CREATE TABLE usage (
  repository TEXT PRIMARY KEY,
  pulls INTEGER NOT NULL,
  hits INTEGER NOT NULL,
  misses INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX usage_top ON usage (pulls DESC, (hits + misses) DESC, repository);
CREATE TRIGGER usage_inserted AFTER INSERT ON usage BEGIN
  UPDATE totals SET pulls = pulls + new.pulls, hits = hits + new.hits, misses = misses + new.misses;
END;
CREATE TRIGGER usage_updated AFTER UPDATE ON usage BEGIN
  UPDATE totals SET pulls = pulls + new.pulls - old.pulls, hits = hits + new.hits - old.hits, misses = misses + new.misses - old.misses;
END;
`;

/** Which request of which process writes an upload session now (UploadStore.claim). */
const VERSION_2 = `
CREATE TABLE upload_claims (
  id TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  until INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Index i holds the migration to version i + 1. Append; never edit a released one. */
const MIGRATIONS: readonly string[] = [VERSION_1, VERSION_2];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the file to SCHEMA_VERSION; `now` stamps when usage counting started. */
export function migrateSchema(db: Database.Database, filename: string, now: number): void {
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) throw new MetadataSchemaError(filename, current, SCHEMA_VERSION);
    for (let version = current; version < SCHEMA_VERSION; version += 1) db.exec(MIGRATIONS[version]!);
    if (current === 0) db.prepare('INSERT INTO settings (name, value) VALUES (?, ?)').run('usage_since', now);
    if (current !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
