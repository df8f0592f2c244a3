"""An ingest as a Ray Data job: list here, read and measure on CPU tasks, embed on model actors,
write shards here; the library then merges them (engine.store.shards).

    files (listed by this process, minus what the library already has)
      -> read_file      Ray tasks, 1 CPU each: hash, decode, features, description, waveform, windows
      -> Embedding      actor pool: CLAP once per actor, batches of files (1 GPU each where GPUs exist)
      -> shards         written by this process as each shard's files are all back (engine.cluster.shards)

Ray is optional (requirements-ray.txt); without it ``--ray`` says how to install it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.cluster.shards import Plan, write_shard
from engine.cluster.work import Embedding, read_file
from engine.config import Settings
from engine.errors import EngineError

READ_MEMORY_BYTES = 512 * 2**20
MAX_BLOCKS = 10_000
INSTALL_HINT = "Install it with: pip install -r requirements-ray.txt (the same versions on every worker)."


@dataclass
class ClusterOptions:
    address: str | None = None  # None: a local Ray on this machine; "auto" or "ray://host:10001": a cluster
    actors: int = 1  # model actors (one GPU each where the cluster has GPUs)
    batch_files: int = 8  # files an actor embeds in one call
    batch_windows: int | None = None  # windows per model forward in the actors (default: TRAUM_CLAP_BATCH_WINDOWS)
    shard_files: int = 256  # files per shard
    cpus: int | None = None  # CPUs for a local Ray (default: all)
    actor_threads: int | None = None  # torch threads per CPU actor (default: a local Ray's CPUs / actors)


@dataclass
class ClusterSummary:
    files: int = 0  # files the job had to read (after what the library already had)
    skipped_known: int = 0  # unchanged files the library already holds: not listed for the job
    shards_done_before: int = 0  # shards a previous run had written (merged first): not redone
    shards_written: int = 0
    tracks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    audio_s: float = 0.0  # seconds of audio read
    seconds: float = 0.0
    folder: str = ""

    @property
    def realtime(self) -> float:
        return self.audio_s / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {"files": self.files, "skipped_known": self.skipped_known,
                "shards_done_before": self.shards_done_before, "shards_written": self.shards_written,
                "tracks": self.tracks, "failed": [{"path": p, "error": e} for p, e in self.failed],
                "audio_hours": round(self.audio_s / 3600, 3), "seconds": round(self.seconds, 2),
                "times_realtime": round(self.realtime, 1), "folder": self.folder}


def import_ray():
    """The ray module, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the part the job needs
    except ImportError as exc:
        raise EngineError("ingesting on Ray needs the optional 'ray[data]' package, which is not installed.",
                          hint=INSTALL_HINT, title="Ray not installed") from exc
    return ray


def run(files: list[str], *, folder: Path, settings: Settings, options: ClusterOptions,
        on_shard: Callable[[ClusterSummary], None] | None = None) -> ClusterSummary:
    """Read and embed ``files`` (paths as the user gave them) on Ray into shards under ``folder``.

    Shards a previous run wrote are kept; only unwritten shards holding one of ``files`` run (a file
    in a written shard, asked for again, goes into a new one: see ``Plan``). ``on_shard`` is told
    after each shard is written.
    """
    ray = import_ray()
    started = time.monotonic()
    plan = Plan.load_or_create(folder, files, shard_files=options.shard_files)
    todo = plan.unfinished(set(files))
    summary = ClusterSummary(folder=str(folder))
    listing = [{"shard": number, "source_path": os.path.realpath(name), "name": name}
               for number in todo for name in plan.shards[number]]
    summary.files = len(listing)
    if not listing:
        summary.seconds = time.monotonic() - started
        return summary
    _start(ray, options)
    expected = {number: len(plan.shards[number]) for number in todo}
    pending: dict[int, list[dict]] = {number: [] for number in todo}
    for row in _dataset(ray, listing, settings, options).iter_rows():
        row = dict(row)
        pending[row["shard"]].append(row)
        if row.get("error"):
            summary.failed.append((row["name"], row["error"]))
        else:
            summary.tracks += 1
            summary.audio_s += float(row.get("analysed_duration") or 0.0)
        if len(pending[row["shard"]]) == expected[row["shard"]]:
            write_shard(plan.path(row["shard"]), pending.pop(row["shard"]))
            summary.shards_written += 1
            summary.seconds = time.monotonic() - started
            if on_shard is not None:
                on_shard(summary)
    summary.seconds = time.monotonic() - started
    return summary


def _start(ray, options: ClusterOptions) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never report usage from a user's machine
    if ray.is_initialized():
        return
    try:
        if options.address:
            ray.init(address=options.address, log_to_driver=False)
        else:
            ray.init(num_cpus=options.cpus, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ConnectionError, RuntimeError, ...: Ray's own message says which
        where = options.address or "a local Ray"
        raise EngineError(f"could not start or reach {where}: {type(exc).__name__}: {exc}",
                          hint="Check the address ('auto' on a cluster node, or ray://HEAD:10001) and that the "
                               "cluster runs the same Ray and Python versions.", title="Ray unavailable") from exc


def _dataset(ray, listing: list[dict], settings: Settings, options: ClusterOptions):
    """The job's Ray Data pipeline over the listed files."""
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    actors = max(1, options.actors)
    # Without GPUs an actor is a CPU worker; its logical share leaves reads a CPU to run on, or
    # actors holding every CPU would wait forever for files no task can read.
    cpus = resources.get("CPU", 1)
    actor_cpus = 0 if gpus >= 1 else max(0.25, min(1.0, (cpus - 1) / actors)) if cpus > 1 else 0.5
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = True
    # Up to one file per block, so a long file does not hold up its neighbours' reads; past
    # MAX_BLOCKS a block holds several (a million blocks would cost the driver more than the reads).
    data = ray.data.from_items(listing, override_num_blocks=min(len(listing), MAX_BLOCKS))
    # Reads (spread over the nodes by Ray Data's default) each reserve the memory a long decode needs
    # (the analysed part, resampled twice). A reservation the actors do not make also keeps Ray Data
    # from fusing the reads into the actors, which would read one file at a time per model.
    data = data.map(read_file, fn_kwargs={"settings": settings}, num_cpus=1, memory=READ_MEMORY_BYTES)
    if options.batch_windows:  # a GPU takes far bigger forwards than the CPU default
        settings = settings.model_copy(update={"clap_batch_windows": max(1, min(256, options.batch_windows))})
    # A CPU actor reserves part of a CPU so reads can run (above), but the model is the slow stage:
    # on a local Ray the actors share every core (torch threads), on a cluster --actor-threads says.
    threads = options.actor_threads or (max(1, int(cpus) // actors) if not options.address and not gpus else None)
    return data.map_batches(
        Embedding, fn_constructor_kwargs={"settings": settings, "threads": threads},
        batch_size=max(1, options.batch_files), batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus >= 1 else 0, num_cpus=actor_cpus,
    )
