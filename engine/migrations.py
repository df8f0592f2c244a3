"""Ordered, named schema migrations. Append only: never edit a shipped step.

The library records every applied step in ``schema_migrations``; opening a
database applies whatever is missing, in order, each in its own transaction.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
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
