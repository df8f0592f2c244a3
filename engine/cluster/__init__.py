"""Ingest beyond one machine: the import pipeline as a Ray Data job, and the bulk merge of its shards.

``ingest_on_ray`` lists the files here (skipping what the library already has
unchanged), runs the job (``job.py``: CPU tasks read, model actors embed, this
process writes Parquet shards, ``shards.py``) and merges the shards into the
library (engine.store.shards). ``merge_folder`` is the merge alone, for shards
a job wrote elsewhere. Everything a worker computes comes from the local
import's own functions (``work.py``), so the library is the same either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.cluster.job import ClusterOptions, ClusterSummary, import_ray
from engine.cluster.shards import read_shard, shard_files
from engine.config import Settings
from engine.errors import EngineError
from engine.ingest import collect_files
from engine.store import MergedShard, Source, Store

# Write-ahead log a merge lets grow before DuckDB checkpoints (engine.store.Database.checkpoints_deferred).
MERGE_CHECKPOINT_THRESHOLD = "1GB"

__all__ = ["ClusterOptions", "ClusterSummary", "MergeSummary", "import_ray", "ingest_on_ray", "merge_folder"]


@dataclass
class MergeSummary:
    shards: list[MergedShard] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (shard, why): skipped, the rest merged

    @property
    def added(self) -> int:
        return sum(shard.added for shard in self.shards)

    def to_dict(self) -> dict:
        return {"shards": len(self.shards), "merged_before": sum(s.skipped for s in self.shards),
                "added": self.added, "known": sum(s.known for s in self.shards),
                "failed": sum(s.failed for s in self.shards),
                "damaged": [{"shard": name, "error": why} for name, why in self.damaged]}


def merge_folder(store: Store, folder: Path, *, on_shard: Callable[[MergedShard], None] | None = None) -> MergeSummary:
    """Merge every shard in ``folder`` not merged before, each in its own transaction; a shard that
    cannot be read is reported and skipped."""
    summary = MergeSummary()
    with store.db.checkpoints_deferred(MERGE_CHECKPOINT_THRESHOLD):
        for path in shard_files(folder):
            try:
                table = read_shard(path)
            except EngineError as exc:
                summary.damaged.append((path.name, f"{exc} {exc.hint or ''}".strip()))
                continue
            merged = store.shards.merge(path, table)
            summary.shards.append(merged)
            if on_shard is not None:
                on_shard(merged)
    return summary


def ingest_on_ray(store: Store, settings: Settings, paths, *, options: ClusterOptions, folder: Path,
                  on_shard: Callable[[ClusterSummary], None] | None = None) -> tuple[ClusterSummary, MergeSummary]:
    """Import ``paths`` (files and folders, recursively) on Ray, then merge the shards."""
    import_ray()  # before listing a million files: say at once when Ray is missing
    # What a stopped run of this job wrote goes in first, so its files count as known below.
    done_before = shard_files(folder) if folder.is_dir() else []
    resumed = merge_folder(store, folder) if done_before else MergeSummary()
    files, rejected = collect_files(paths, settings.allowed_extensions, exclude=(settings.data_dir,))
    listed = {str(file): _source(file) for file in files}
    unchanged = store.sources.unchanged([source for source in listed.values() if source is not None])
    todo = [name for name, source in listed.items() if source is None or source.path not in unchanged]
    from engine.cluster import job

    summary = job.run(todo, folder=folder, settings=settings, options=options, on_shard=on_shard)
    summary.skipped_known = len(files) - len(todo)
    summary.shards_done_before = len(done_before)
    summary.failed[:0] = [(result.source, result.error) for result in rejected]
    merged = merge_folder(store, folder)
    # This command's merge: what it took in from the stopped run, then its own shards.
    fresh = {shard.name for shard in resumed.shards if not shard.skipped}
    return summary, MergeSummary(resumed.shards + [s for s in merged.shards if s.name not in fresh], merged.damaged)


def _source(file: Path) -> Source | None:
    try:
        resolved = file.resolve()
        stat = os.stat(resolved)
    except OSError:  # gone since the listing: the job reports it
        return None
    return Source(str(resolved), stat.st_size, stat.st_mtime)
