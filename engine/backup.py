"""Export a library to Parquet plus its managed audio, and import it into an empty one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine import __version__
from engine.errors import EngineError, StoreError
from engine.store import MANAGED_PATH, STORAGE_KINDS, Store
from engine.store.migrations import insert_track_embeddings, window_sets_from_rows

# Fixed table names, in dependency order; never taken from input.
TABLES = ("tracks", "features", "sources", "track_embeddings", "window_sets", "embedding_errors", "jobs", "folders",
          "failures", "missing_tracks", "descriptions", "track_categories", "category_vectors", "library_state",
          "favourites", "track_tags", "collections", "collection_tracks", "waveforms", "merged_shards")
# Exports written before migration 0003 hold one row per window in this file.
OLD_WINDOW_TABLE = "window_embeddings"
MANIFEST = "manifest.json"


def export_library(store: Store, target: Path) -> dict:
    """Write every table as ``TABLE.parquet`` and the managed copies under ``audio/``."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise EngineError(f"{target} is not empty.", hint="Export into a new or empty folder.",
                          title="Export refused")
    target.mkdir(parents=True, exist_ok=True)
    counts = {}
    with store.db.transaction("export the library") as conn:  # one consistent snapshot
        for table in TABLES:
            data = conn.execute(f"SELECT * FROM {table}").to_arrow_table()  # noqa: S608 (fixed names)
            pq.write_table(data, target / f"{table}.parquet")
            counts[table] = data.num_rows
        managed = [row[0] for row in conn.execute("SELECT path FROM tracks WHERE storage = 'managed'").fetchall()]
    for relative in managed:
        source = store.data_dir / relative
        if source.is_file():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    manifest = {"format": 1, "engine": __version__, "migrations": store.db.applied_migrations(), "rows": counts,
                "managed_files": len(managed)}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def import_library(store: Store, source: Path) -> dict:
    """Restore an export into an empty library: rows in one transaction, then managed files."""
    source = Path(source)
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise EngineError(f"{source} holds no Traum-Engine export ({MANIFEST} is missing).", title="Import refused")
    try:
        manifest = json.loads(manifest_path.read_text())
        tracks = pq.read_table(source / "tracks.parquet", columns=["storage", "path"]).to_pylist()
    except (OSError, ValueError) as exc:  # JSON and Arrow errors are ValueErrors
        raise EngineError(f"{source} is not a readable export: {exc}", title="Import refused") from None
    _check_paths(tracks)
    unknown = set(manifest.get("migrations", [])) - set(store.db.applied_migrations())
    if unknown:
        raise EngineError(f"the export comes from a newer library schema ({', '.join(sorted(unknown))}).",
                          hint="Update Traum-Engine, then import again.", title="Import refused")
    if store.tracks.count():
        raise EngineError(f"the library at {store.data_dir} is not empty.",
                          hint="Import into a new data folder (TRAUM_DATA_DIR).", title="Import refused")
    copied: list[Path] = []
    try:
        with store.db.transaction("import the library") as conn:
            for table in TABLES:
                path = source / f"{table}.parquet"
                if not path.is_file():
                    continue
                data = pq.read_table(path)
                if table == "track_embeddings" and pa.types.is_list(data.schema.field("embedding").type):
                    insert_track_embeddings(conn, data)  # an export from before migration 0004
                    continue
                columns = ", ".join(f'"{name}"' for name in data.column_names if name.isidentifier())
                conn.register("incoming", data)
                try:
                    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")  # noqa: S608
                finally:
                    conn.unregister("incoming")
            old_windows = source / f"{OLD_WINDOW_TABLE}.parquet"
            if old_windows.is_file():
                conn.register("incoming_windows", pq.read_table(old_windows))
                try:
                    window_sets_from_rows(conn, "incoming_windows")
                finally:
                    conn.unregister("incoming_windows")
            managed = [row[0] for row in conn.execute("SELECT path FROM tracks WHERE storage = 'managed'").fetchall()]
            for relative in managed:
                origin = source / relative
                if not origin.is_file():
                    raise StoreError(f"the export lacks the audio file {relative}.", title="Incomplete export")
                destination = store.data_dir / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, destination)
                copied.append(destination)
    except BaseException as exc:
        for path in copied:
            path.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError)) and not isinstance(exc, EngineError):
            raise EngineError(f"the import from {source} failed and was undone: {exc}",
                              title="Import failed") from None
        raise
    store.journal.reload()
    return manifest


def _check_paths(tracks: list[dict]) -> None:
    """Refuse exports whose paths could make an import (or a later delete) touch files outside the library."""
    for track in tracks:
        storage, path = track["storage"], track["path"] or ""
        if storage not in STORAGE_KINDS:
            raise EngineError(f"the export has a track stored as {storage!r}.", title="Import refused")
        if storage == "managed" and not MANAGED_PATH.fullmatch(path):
            raise EngineError(f"the export has an unsafe library path {path!r}.", title="Import refused")
        if storage == "referenced" and not Path(path).is_absolute():
            raise EngineError(f"the export has a relative original path {path!r}.", title="Import refused")
