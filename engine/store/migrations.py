"""Ordered, named schema migrations. Append only: never edit a shipped step.

The library records every applied step in ``schema_migrations``; opening a
database applies whatever is missing, in order, each in its own transaction.
A step is SQL, or a function of the connection when data must be reshaped.
"""

from __future__ import annotations

from collections.abc import Callable

MIGRATIONS: list[tuple[str, str | Callable]] = [
    (
        "0001_create_tracks_features_sources_jobs",
        """
        CREATE TABLE tracks (
            id VARCHAR PRIMARY KEY,          -- SHA-256 of the file's bytes
            filename VARCHAR NOT NULL,       -- original base name, metadata only
            storage VARCHAR NOT NULL,        -- 'managed' (copy under data/audio) or 'referenced'
            path VARCHAR NOT NULL,           -- managed: relative to the data dir; referenced: absolute
            format VARCHAR NOT NULL,
            codec VARCHAR,
            file_size BIGINT NOT NULL,
            file_mtime DOUBLE,
            sample_rate INTEGER NOT NULL,
            channels INTEGER NOT NULL,
            duration DOUBLE NOT NULL,        -- seconds, whole file
            analysed_duration DOUBLE NOT NULL,
            truncated BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE features (
            track_id VARCHAR PRIMARY KEY,
            tempo DOUBLE,                    -- BPM; NULL when no pulse
            spectral_centroid DOUBLE,        -- Hz
            zero_crossing_rate DOUBLE,
            rms_energy DOUBLE,
            feature_version INTEGER NOT NULL
        );
        -- Every path we have seen for a track, so unchanged files are skipped
        -- on the next run without being read again.
        CREATE TABLE sources (
            path VARCHAR PRIMARY KEY,
            track_id VARCHAR NOT NULL,
            file_size BIGINT NOT NULL,
            file_mtime DOUBLE NOT NULL,
            seen_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE jobs (
            id VARCHAR PRIMARY KEY,
            batch_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL,         -- path or uploaded name, for display
            status VARCHAR NOT NULL,         -- queued, running, added, duplicate, failed, interrupted
            stage VARCHAR,
            progress DOUBLE NOT NULL DEFAULT 0,
            message VARCHAR,
            track_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        "0002_create_embeddings",
        """
        -- Embeddings are stored per model: model_id names the weights and
        -- pipeline_version the windowing/pooling code, so a change of either
        -- leaves old rows stale (and recomputable) instead of mixing spaces.
        -- FLOAT[] rather than FLOAT[D]: rows of two models of different
        -- widths coexist while a library is re-embedded.
        CREATE TABLE track_embeddings (
            track_id VARCHAR NOT NULL,
            model_id VARCHAR NOT NULL,
            pipeline_version INTEGER NOT NULL,
            embedding FLOAT[] NOT NULL,      -- L2-normalised mean of the window embeddings
            window_count INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (track_id, model_id)
        );
        CREATE TABLE window_embeddings (
            track_id VARCHAR NOT NULL,
            model_id VARCHAR NOT NULL,
            window_index INTEGER NOT NULL,
            start_s DOUBLE NOT NULL,
            end_s DOUBLE NOT NULL,
            embedding FLOAT[] NOT NULL,
            PRIMARY KEY (track_id, model_id, window_index)
        );
        -- Why a track has no embedding yet (model missing, decode failed on reembed).
        CREATE TABLE embedding_errors (
            track_id VARCHAR PRIMARY KEY,
            model_id VARCHAR,
            message VARCHAR NOT NULL,
            noted_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """,
    )
)


WINDOW_SETS_SQL = """
    -- One row per (track, model) holding all of its window embeddings, keyed
    -- by a single column: DuckDB answers "these 20 tracks' windows" through
    -- the key's index in milliseconds, while one row per window under a
    -- compound key meant a scan (150 ms at 100k tracks, 800 ms at 1M).
    CREATE TABLE window_sets (
        key VARCHAR PRIMARY KEY,         -- track_id || ':' || model_id (engine.store.window_key)
        track_id VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        dim INTEGER NOT NULL,
        starts_s DOUBLE[] NOT NULL,      -- window i covers starts_s[i] .. ends_s[i] seconds
        ends_s DOUBLE[] NOT NULL,
        embeddings BLOB NOT NULL         -- float32 little-endian, len(starts_s) x dim, row-major
    );
"""


def float32_bytes(vectors):
    """A pyarrow list<float> column as (large_binary of float32 little-endian bytes, dims)."""
    import numpy as np
    import pyarrow as pa

    vectors = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    offsets = np.asarray(vectors.offsets, dtype=np.int64)
    flat = np.ascontiguousarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype="<f4")
    sizes = np.diff(offsets)
    data = pa.Array.from_buffers(pa.large_binary(), len(vectors),
                                 [None, pa.py_buffer((offsets - offsets[0]) * 4), pa.py_buffer(flat)])
    return data, pa.array(sizes.astype(np.int32))


def window_sets_from_rows(conn, relation: str) -> None:
    """Pack per-window rows (track_id, model_id, window_index, start_s, end_s, embedding FLOAT[])
    read from ``relation`` into window_sets, a first-character group of track ids at a time
    so a large library is not held in memory at once."""
    import pyarrow as pa

    groups = conn.execute(f"SELECT DISTINCT substr(track_id, 1, 1) FROM {relation}").fetchall()  # noqa: S608
    for (group,) in groups:
        table = conn.execute(
            "SELECT track_id, model_id, list(start_s ORDER BY window_index) AS starts_s,"
            " list(end_s ORDER BY window_index) AS ends_s, flatten(list(embedding ORDER BY window_index)) AS flat,"
            f" len(any_value(embedding)) AS dim FROM {relation} WHERE substr(track_id, 1, 1) = ?"  # noqa: S608
            " GROUP BY track_id, model_id",
            [group],
        ).to_arrow_table()
        if table.num_rows == 0:
            continue
        blobs, _ = float32_bytes(table.column("flat"))
        track_ids = table.column("track_id").to_pylist()
        model_ids = table.column("model_id").to_pylist()
        packed = pa.table({
            "key": [f"{t}:{m}" for t, m in zip(track_ids, model_ids)],
            "track_id": track_ids,
            "model_id": model_ids,
            "dim": table.column("dim").cast(pa.int32()),
            "starts_s": table.column("starts_s"),
            "ends_s": table.column("ends_s"),
            "embeddings": blobs,
        })
        conn.register("packed_windows", packed)
        try:
            conn.execute("INSERT INTO window_sets SELECT * FROM packed_windows")
        finally:
            conn.unregister("packed_windows")


def _window_sets(conn) -> None:
    conn.execute(WINDOW_SETS_SQL)
    window_sets_from_rows(conn, "window_embeddings")
    conn.execute("DROP TABLE window_embeddings")


MIGRATIONS.append(("0003_window_sets", _window_sets))


TRACK_EMBEDDINGS_SQL = """
    -- A track's vector is float32 little-endian bytes, not FLOAT[]: DuckDB logged
    -- a one-row append to a FLOAT[] column with the whole last block of list
    -- entries (up to 2,048 rows, 3.5 MB at 100k tracks), so its log filled and the
    -- library checkpointed (3.3 s at 100k tracks) every five tracks of an import.
    CREATE TABLE track_embeddings (
        track_id VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        pipeline_version INTEGER NOT NULL,
        dim INTEGER NOT NULL,
        embedding BLOB NOT NULL,         -- float32 little-endian x dim: the L2-normalised mean of the windows
        window_count INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (track_id, model_id)
    );
"""


def insert_track_embeddings(conn, table) -> None:
    """Insert arrow rows whose ``embedding`` is a list of floats (libraries and exports made
    before 0004) into track_embeddings, as bytes."""
    data, dims = float32_bytes(table.column("embedding"))
    table = table.set_column(table.column_names.index("embedding"), "embedding", data).append_column("dim", dims)
    columns = ", ".join(name for name in table.column_names if name.isidentifier())
    conn.register("list_embeddings", table)
    try:
        conn.execute(f"INSERT INTO track_embeddings ({columns}) SELECT {columns} FROM list_embeddings")  # noqa: S608
    finally:
        conn.unregister("list_embeddings")


def _embedding_bytes(conn) -> None:
    conn.execute("ALTER TABLE track_embeddings RENAME TO track_embeddings_lists")
    conn.execute(TRACK_EMBEDDINGS_SQL)
    groups = conn.execute("SELECT DISTINCT substr(track_id, 1, 1) FROM track_embeddings_lists").fetchall()
    for (group,) in groups:  # a share of the library at a time, not all of it in memory
        insert_track_embeddings(conn, conn.execute(
            "SELECT track_id, model_id, pipeline_version, embedding, window_count, created_at"
            " FROM track_embeddings_lists WHERE substr(track_id, 1, 1) = ?", [group]).to_arrow_table())
    conn.execute("DROP TABLE track_embeddings_lists")


MIGRATIONS.append(("0004_embedding_bytes", _embedding_bytes))


LIBRARY_FOLDERS_SQL = """
    -- Folders the library indexes in place, kept in step by sync and watch.
    CREATE TABLE folders (
        path VARCHAR PRIMARY KEY,        -- absolute, resolved
        watched BOOLEAN NOT NULL,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        last_sync TIMESTAMP
    );
    -- Files that could not be imported, as they were then: sync does not retry one
    -- until its size or modification time changes.
    CREATE TABLE failures (
        path VARCHAR PRIMARY KEY,
        file_size BIGINT NOT NULL,
        file_mtime DOUBLE NOT NULL,
        error VARCHAR NOT NULL,
        failed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    -- Tracks none of whose files exists any more; kept (with the last location in
    -- sources) until the files come back or the user prunes them. A table of its own,
    -- not a column: DuckDB 1.5.5 cannot replay a write-ahead log holding an ALTER TABLE
    -- ADD COLUMN (the library would not open again after a crash; tests/test_watch.py).
    CREATE TABLE missing_tracks (
        track_id VARCHAR PRIMARY KEY,
        since TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    -- Containers as users name them; the encoding is in codec.
    UPDATE tracks SET format = 'wav' WHERE format IN ('wavex', 'rf64');
    UPDATE tracks SET format = 'aiff' WHERE format = 'aifc';
"""

MIGRATIONS.append(("0005_library_folders", LIBRARY_FOLDERS_SQL))


DESCRIPTIONS_SQL = """
    -- What a sample is (engine.analysis): one row per track, written with the track
    -- or by 'reanalyse'. New tables, not new columns (see 0005).
    CREATE TABLE descriptions (
        track_id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,           -- 'one-shot', 'loop' or 'long'
        kind_confidence DOUBLE NOT NULL,
        tempo_source VARCHAR,            -- 'audio' or 'name'; NULL when features.tempo is NULL
        bars INTEGER,                    -- whole 4/4 bars at the tempo, when it is cut to bars
        key_tonic VARCHAR,               -- 'C' ... 'B' in sharps; NULL for unpitched material
        key_mode VARCHAR,                -- 'major', 'minor', or NULL when only the note is known
        key_confidence DOUBLE,           -- from the audio; NULL when only the name gave the key
        key_source VARCHAR,              -- 'audio' or 'name'
        name_category VARCHAR,           -- a category word in the path, a hint for the categories
        version INTEGER NOT NULL
    );
    -- Zero-shot categories per model (engine.categories): every category's score, in
    -- the vocabulary's order, and the categories the track belongs to, best first.
    -- One-column key 'track_id:model_id', as window_sets: DuckDB looks single-column keys up
    -- through their index (a page's 20 tracks: 2 ms), while a two-column key is scanned (20 ms at 100k).
    CREATE TABLE track_categories (
        key VARCHAR PRIMARY KEY,
        track_id VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,        -- of the vocabulary and its prompts
        scores BLOB NOT NULL,            -- float32 little-endian, one per category, summing to 1
        members VARCHAR[] NOT NULL
    );
    -- Each model's text embedding of the category prompts, so a library computes it once.
    CREATE TABLE category_vectors (
        model_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        dim INTEGER NOT NULL,
        vectors BLOB NOT NULL,           -- float32 little-endian, (categories, dim), unit rows
        PRIMARY KEY (model_id, version)
    );
    -- Small facts about the library, e.g. which model's categories reads show.
    CREATE TABLE library_state (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    );
"""

MIGRATIONS.append(("0006_descriptions_and_categories", DESCRIPTIONS_SQL))


API_KEYS_SQL = """
    -- Long-lived keys for scripts using the API while the dashboard is shared; only a digest is kept.
    CREATE TABLE api_keys (
        name VARCHAR PRIMARY KEY,
        digest VARCHAR NOT NULL UNIQUE,  -- SHA-256 of the key, hex
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
"""

MIGRATIONS.append(("0007_api_keys", API_KEYS_SQL))


CURATION_SQL = """
    -- What a person keeps (engine.store.curation): favourites, tags and collections. Keyed by
    -- the track's id, its content hash, so they follow a file through moves and renames.
    CREATE TABLE favourites (
        track_id VARCHAR PRIMARY KEY,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    -- One-column key 'track_id:tag' (see 0006); tags are stored folded to lower case.
    CREATE TABLE track_tags (
        key VARCHAR PRIMARY KEY,
        track_id VARCHAR NOT NULL,
        tag VARCHAR NOT NULL,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    -- A collection's key is its name folded to lower case; name keeps how it was typed.
    CREATE TABLE collections (
        key VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    -- One-column key 'collection key' || chr(31) || 'track_id'; position orders the collection.
    CREATE TABLE collection_tracks (
        key VARCHAR PRIMARY KEY,
        collection VARCHAR NOT NULL,
        track_id VARCHAR NOT NULL,
        position INTEGER NOT NULL,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
"""

MIGRATIONS.append(("0008_favourites_tags_collections", CURATION_SQL))


WAVEFORMS_SQL = """
    -- A small overview of each track's waveform for drawing (engine.waveform), computed from the
    -- decode an import makes anyway: per column, the minimum and maximum sample.
    CREATE TABLE waveforms (
        track_id VARCHAR PRIMARY KEY,
        version INTEGER NOT NULL,
        duration DOUBLE NOT NULL,        -- seconds the columns span
        peaks BLOB NOT NULL              -- int8 pairs (min, max) per column, scaled to 127 = full scale
    );
"""

MIGRATIONS.append(("0009_waveforms", WAVEFORMS_SQL))


MERGED_SHARDS_SQL = """
    -- Shards of a cluster ingest (engine.cluster) merged into this library, by the SHA-256 of the
    -- file, so merging a folder again skips them.
    CREATE TABLE merged_shards (
        digest VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,           -- the shard file's path when it was merged
        tracks INTEGER NOT NULL,         -- new tracks it brought
        merged_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
"""

MIGRATIONS.append(("0010_merged_shards", MERGED_SHARDS_SQL))
