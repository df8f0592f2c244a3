"""Merging a cluster ingest's shards (engine.cluster.shards) into the library, in bulk.

Each shard is one transaction of set-based statements over the shard's rows:
its new tracks are written whole (track, features, description, waveform,
vectors or why there are none, source path) or, after a crash, not at all.
A merged shard is remembered by the SHA-256 of its bytes, so merging a folder
again (after a kill, or twice) skips what is in and finishes the rest; content
the library already has only gains the new path, as a local import does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.store.database import Database
from engine.store.journal import Journal

_ROWS = "shard_rows"  # the shard's arrow table, registered on the connection for one merge

# Fixed statements, in order; each reads the shard's rows through temporary tables.
_MERGE = (
    f"CREATE TEMP TABLE merge_read AS SELECT * FROM {_ROWS} WHERE error IS NULL AND id IS NOT NULL",
    # One row per content: the same bytes at two paths are one track with two sources.
    "CREATE TEMP TABLE merge_new AS SELECT * EXCLUDE (n) FROM (SELECT *, row_number() OVER"
    " (PARTITION BY id ORDER BY source_path) AS n FROM merge_read) WHERE n = 1 AND id NOT IN (SELECT id FROM tracks)",
    "INSERT INTO tracks (id, filename, storage, path, format, codec, file_size, file_mtime, sample_rate, channels,"
    " duration, analysed_duration, truncated) SELECT id, filename, 'referenced', source_path, format, codec,"
    " file_size, file_mtime, sample_rate, channels, duration, analysed_duration, truncated FROM merge_new",
    "INSERT INTO features (track_id, tempo, spectral_centroid, zero_crossing_rate, rms_energy, feature_version)"
    " SELECT id, tempo, spectral_centroid, zero_crossing_rate, rms_energy, feature_version FROM merge_new",
    "INSERT OR REPLACE INTO descriptions (track_id, kind, kind_confidence, tempo_source, bars, key_tonic, key_mode,"
    " key_confidence, key_source, name_category, version) SELECT id, kind, kind_confidence, tempo_source, bars,"
    " key_tonic, key_mode, key_confidence, key_source, name_category, description_version FROM merge_new"
    " WHERE kind IS NOT NULL",
    "INSERT OR REPLACE INTO waveforms (track_id, version, duration, peaks) SELECT id, waveform_version,"
    " waveform_duration, waveform_peaks FROM merge_new WHERE waveform_peaks IS NOT NULL",
    "INSERT INTO track_embeddings (track_id, model_id, pipeline_version, dim, embedding, window_count)"
    " SELECT id, model_id, pipeline_version, dim, embedding, window_count FROM merge_new WHERE embedding IS NOT NULL",
    "INSERT INTO window_sets (key, track_id, model_id, dim, starts_s, ends_s, embeddings) SELECT"
    " id || ':' || model_id, id, model_id, dim, starts_s, ends_s, windows FROM merge_new WHERE embedding IS NOT NULL",
    "INSERT OR REPLACE INTO embedding_errors (track_id, model_id, message) SELECT id, model_id, embedding_error"
    " FROM merge_new WHERE embedding IS NULL AND embedding_error IS NOT NULL",
    # Content the library had whose files were all gone plays from the path just read again.
    "UPDATE tracks SET path = found.source_path FROM (SELECT id, min(source_path) AS source_path FROM merge_read"
    " GROUP BY id) found WHERE tracks.id = found.id AND tracks.storage = 'referenced'"
    " AND tracks.id IN (SELECT track_id FROM missing_tracks)",
    "DELETE FROM missing_tracks WHERE track_id IN (SELECT id FROM merge_read)",
    # Every file read is a known source now, so the next run and sync skip it unread.
    "INSERT INTO sources (path, track_id, file_size, file_mtime) SELECT source_path, id, file_size, file_mtime"
    " FROM merge_read ON CONFLICT (path) DO UPDATE SET track_id = excluded.track_id,"
    " file_size = excluded.file_size, file_mtime = excluded.file_mtime, seen_at = now()",
    "DELETE FROM failures WHERE path IN (SELECT source_path FROM merge_read)",
    # A file that failed as it is now is not retried by sync until it changes (as locally).
    f"INSERT INTO failures (path, file_size, file_mtime, error) SELECT source_path, file_size, file_mtime, error"
    f" FROM {_ROWS} WHERE error IS NOT NULL AND file_size IS NOT NULL AND file_mtime IS NOT NULL"
    " ON CONFLICT (path) DO UPDATE SET file_size = excluded.file_size, file_mtime = excluded.file_mtime,"
    " error = excluded.error, failed_at = now()",
)


@dataclass(frozen=True)
class MergedShard:
    name: str
    added: int  # new tracks
    known: int  # files whose content the library had (or another file of the shard)
    failed: int  # files the cluster could not read
    skipped: bool  # merged before: nothing done


def shard_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Shards:
    def __init__(self, db: Database, journal: Journal):
        self._db = db
        self._journal = journal

    def merge(self, path: Path, table) -> MergedShard:
        """Merge one shard (``table``: its rows, engine.cluster.shards.SCHEMA) in one transaction."""
        digest = shard_digest(path)
        failed = sum(1 for error in table.column("error").to_pylist() if error is not None)
        with self._db.transaction(f"merge the shard {path.name}") as conn:
            if conn.execute("SELECT 1 FROM merged_shards WHERE digest = ?", [digest]).fetchone():
                return MergedShard(path.name, 0, 0, failed, skipped=True)
            conn.register(_ROWS, table)
            try:  # on an error the transaction rolls back, temporary tables included
                for statement in _MERGE[:2]:
                    conn.execute(statement)
                read, added = conn.execute("SELECT (SELECT count(*) FROM merge_read),"
                                           " (SELECT count(*) FROM merge_new)").fetchone()
                for statement in _MERGE[2:]:
                    conn.execute(statement)
                conn.execute("INSERT INTO merged_shards (digest, name, tracks) VALUES (?, ?, ?)",
                             [digest, str(path), added])
                conn.execute("DROP TABLE merge_read")
                conn.execute("DROP TABLE merge_new")
            finally:
                conn.unregister(_ROWS)
        if added or read:
            self._journal.reload()  # many tracks at once: indexes rebuild rather than replay each
        return MergedShard(path.name, added, read - added, failed, skipped=False)
