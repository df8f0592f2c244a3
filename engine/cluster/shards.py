"""The shard format a cluster ingest writes and the library merges: one Parquet row per file.

A shard holds the files one plan entry names (``Plan``): for each, either the
track as the local import would store it (metadata, features, description,
waveform, vectors) or why the file failed. Vectors are float32 little-endian
bytes, exactly the store's own blobs, so the merge copies them as they are.

The plan (``plan.json`` beside the shards) fixes which files go in which shard
before any work starts, so a job that was killed and is run again skips the
shards already written (the library merges them first) and redoes only the
rest. A shard file appears whole or not at all: it is written under a
temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import EngineError

PLAN = "plan.json"
PLAN_VERSION = 1
SHARD_FILES = 256  # files a shard holds: small enough to lose little to a kill, large enough for Parquet
_PREFIX = "shard-"

SCHEMA = pa.schema([
    # The file, as listed.
    ("shard", pa.int32()),
    ("source_path", pa.string()),  # absolute, resolved
    ("name", pa.string()),  # the path as the user gave it (names hint at categories, as in a local import)
    ("file_size", pa.int64()),
    ("file_mtime", pa.float64()),
    ("error", pa.string()),  # why the file failed; then every field below is null
    # The track (engine.store.TrackRecord).
    ("id", pa.string()),  # SHA-256 of the bytes
    ("filename", pa.string()),
    ("format", pa.string()),
    ("codec", pa.string()),
    ("sample_rate", pa.int32()),
    ("channels", pa.int32()),
    ("duration", pa.float64()),
    ("analysed_duration", pa.float64()),
    ("truncated", pa.bool_()),
    # Measurements.
    ("tempo", pa.float64()),
    ("spectral_centroid", pa.float64()),
    ("zero_crossing_rate", pa.float64()),
    ("rms_energy", pa.float64()),
    ("feature_version", pa.int32()),
    # Description.
    ("kind", pa.string()),
    ("kind_confidence", pa.float64()),
    ("tempo_source", pa.string()),
    ("bars", pa.int32()),
    ("key_tonic", pa.string()),
    ("key_mode", pa.string()),
    ("key_confidence", pa.float64()),
    ("key_source", pa.string()),
    ("name_category", pa.string()),
    ("description_version", pa.int32()),
    # Waveform overview.
    ("waveform_version", pa.int32()),
    ("waveform_duration", pa.float64()),
    ("waveform_peaks", pa.binary()),  # int8 (columns, 2)
    # Vectors, or why there are none (the track is kept; 'reembed' finishes it, as locally).
    ("model_id", pa.string()),
    ("pipeline_version", pa.int32()),
    ("dim", pa.int32()),
    ("embedding", pa.binary()),  # float32 (dim,)
    ("window_count", pa.int32()),
    ("starts_s", pa.list_(pa.float64())),
    ("ends_s", pa.list_(pa.float64())),
    ("windows", pa.binary()),  # float32 (window_count, dim), row-major
    ("embedding_error", pa.string()),
])
COLUMNS = tuple(SCHEMA.names)


def shard_name(number: int) -> str:
    return f"{_PREFIX}{number:05d}.parquet"


@dataclass
class Plan:
    """Which files each shard holds, kept in ``plan.json`` so a rerun finds the same shards."""

    folder: Path
    shards: list[list[str]]  # per shard: source paths as the user gave them

    @classmethod
    def load_or_create(cls, folder: Path, files: list[str], *, shard_files: int = SHARD_FILES) -> "Plan":
        """The folder's plan, extended by files it does not hold yet (new shards at the end)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PLAN
        shards: list[list[str]] = []
        if path.exists():
            try:
                document = json.loads(path.read_text())
                if document.get("version") != PLAN_VERSION:
                    raise ValueError(f"version {document.get('version')}")
                shards = [list(map(str, shard)) for shard in document["shards"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise EngineError(f"{path} is not a shard plan this version can read ({exc}).",
                                  hint="Give the job a new, empty output folder.", title="Unreadable shard plan")
        plan = cls(folder, shards)
        # A file waiting in an unwritten shard stays there. One already in a written shard is asked
        # for again only when that shard did not bring it in (it failed, or changed since): a new shard.
        waiting = {file for number in plan.unfinished() for file in shards[number]}
        new = [file for file in files if file not in waiting]
        step = max(1, shard_files)
        plan.shards += [new[i:i + step] for i in range(0, len(new), step)]
        if new or not path.exists():
            plan._save()
        return plan

    def _save(self) -> None:
        tmp = self.folder / f".{PLAN}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"version": PLAN_VERSION, "shards": self.shards}))
        os.replace(tmp, self.folder / PLAN)

    def path(self, number: int) -> Path:
        return self.folder / shard_name(number)

    def unfinished(self, wanted: set[str] | None = None) -> list[int]:
        """Shards not written yet (those holding a ``wanted`` file, when given)."""
        return [number for number, files in enumerate(self.shards)
                if not self.path(number).exists() and (wanted is None or wanted.intersection(files))]


def write_shard(path: Path, rows: list[dict]) -> None:
    """Write one shard whole: a temporary file renamed into place, so a kill leaves none or all of it."""
    table = pa.Table.from_pylist([{column: row.get(column) for column in COLUMNS} for row in rows], schema=SCHEMA)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_files(folder: Path) -> list[Path]:
    """The finished shards in a folder, in order (temporary files of a killed write are not shards)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineError(f"{folder} is not a folder.", hint="Give the folder a cluster ingest wrote its shards to.",
                          title="No shards")
    return sorted(p for p in folder.glob(f"{_PREFIX}*.parquet") if p.is_file())


def read_shard(path: Path) -> pa.Table:
    """A shard as an arrow table with exactly SCHEMA's columns; a damaged or foreign file says so."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise EngineError(f"{path.name} cannot be read as a shard: {exc}",
                          hint="Delete it and run the cluster ingest again with the same output folder: only that "
                               "shard is redone.", title="Damaged shard") from exc
    missing = [column for column in COLUMNS if column not in table.column_names]
    if missing:
        raise EngineError(f"{path.name} lacks the columns {', '.join(missing)}.",
                          hint="It was written by another version; run the cluster ingest again.",
                          title="Damaged shard")
    return table.select(list(COLUMNS)).cast(SCHEMA)
