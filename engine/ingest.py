"""Running imports: files and folders, uploads, and re-embedding, on a bounded pool.

Each file is one job that goes through :data:`engine.stages.STAGES`; a bad
file ends as a ``failed`` result with a readable reason and the batch goes
on. Files run on a bounded thread pool (``max_concurrent_jobs``): the heavy
parts (libsndfile, FFmpeg, soxr, numpy FFTs) release the GIL, and one
:class:`~engine.vectors.WindowBatcher` feeds the model full batches.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine import audio
from engine.classify import categoriser_for
from engine.config import Settings
from engine.errors import EngineError
from engine.features import warm_up
from engine.scan import scan
from engine.spool import payload_size, safe_filename, spool
from engine.stages import STAGES, FileResult, Item, Work
from engine.store import EmbeddingFailure, JobStatus, Store, Track
from engine.vectors import PIPELINE_VERSION, WindowBatcher, embed_decoded

log = logging.getLogger(__name__)

JOB_UPDATE_EVERY_S = 0.5  # how often a running file's job row is brought up to date
# A file this short (at most 3 windows, a few MB decoded) gives up its decode slot while it waits
# for the model, so the next one-shots decode meanwhile; a longer file keeps its slot to the end,
# so memory stays bounded by max_concurrent_jobs long files.
SHORT_FILE_S = 30.0


@dataclass(frozen=True)
class Progress:
    """One progress report: which job, which stage, how far (0 to 1)."""

    job_id: str
    source: str
    stage: str
    fraction: float
    result: FileResult | None = None  # set when the file is finished


ProgressCallback = Callable[[Progress], None]


class Ingestor:
    """Runs import jobs against one store with one set of settings."""

    def __init__(self, store: Store, settings: Settings, *, embedder_provider=None):
        self.store = store
        self.settings = settings
        # Returns the shared embedder or raises ModelUnavailableError; None
        # means features only.
        self.embedder_provider = embedder_provider

    # -- entry points -------------------------------------------------------

    def ingest_paths(self, paths, *, copy: bool = False, progress: ProgressCallback | None = None) -> list[FileResult]:
        """Import files and folders (recursively). Results come back in input order."""
        files, rejected = collect_files(paths, self.settings.allowed_extensions, exclude=(self.settings.data_dir,))
        job_ids = self.store.jobs.create(uuid.uuid4().hex, [str(f) for f in files] + [r.source for r in rejected])
        for result, job_id in zip(rejected, job_ids[len(files):]):
            result.job_id = job_id
            self.store.jobs.finish(job_id, JobStatus.FAILED, result.error)
            report_progress(progress, Progress(job_id, result.source, "done", 1.0, result))
        return self.ingest_files(files, job_ids, copy=copy, progress=progress) + rejected

    def ingest_files(self, files: list[Path], job_ids: list[str] | None = None, *, copy: bool = False,
                     progress: ProgressCallback | None = None) -> list[FileResult]:
        """Import files already found (a sync's new and changed files); results in input order."""
        if job_ids is None:
            job_ids = self.store.jobs.create(uuid.uuid4().hex, [str(f) for f in files])
        placement = "copy" if copy else "reference"
        items = [Item(f, str(f), f.name, placement, j) for f, j in zip(files, job_ids)]
        return self.run_items(items, progress)

    def ingest_upload(self, name: str, data: bytes, *, progress: ProgressCallback | None = None) -> FileResult:
        """Import one uploaded file now. ``name`` is metadata only, never a path."""
        items, [result] = self.queue_uploads([(name, data)])
        return self.run_items(items, progress)[0] if items else result

    def queue_uploads(self, uploads, *, batch_id: str | None = None) -> tuple[list[Item], list[FileResult]]:
        """Create a job per upload and spool each under data/tmp with a generated name.

        ``uploads`` holds (name, data) pairs; data is bytes or a binary file
        object, which is streamed to disk in chunks, so a large upload is
        never copied in memory. Returns the items ready to run, and a result
        per upload in input order: ``queued`` with its job, or ``failed`` when
        refused at once (type or size). Queued uploads wait on disk.
        """
        names = [safe_filename(name) for name, _ in uploads]
        job_ids = self.store.jobs.create(batch_id or uuid.uuid4().hex, names)
        items, results = [], []
        for filename, (_, data), job_id in zip(names, uploads, job_ids):
            try:
                self.check_upload(filename, payload_size(data))
                spooled = spool(data, filename, self.settings.tmp_dir)
            except EngineError as exc:
                self.store.jobs.finish(job_id, JobStatus.FAILED, str(exc))
                results.append(FileResult(filename, JobStatus.FAILED, error=str(exc), job_id=job_id))
                continue
            items.append(Item(spooled, filename, filename, "move", job_id))
            results.append(FileResult(filename, JobStatus.QUEUED, job_id=job_id))
        return items, results

    def check_upload(self, filename: str, size: int | None) -> None:
        """Refuse an upload by its name's type and its size (when known), before it is stored."""
        audio.check_type(filename, allowed_extensions=self.settings.allowed_extensions)
        if size is not None:
            audio.check_size(size, max_size_bytes=self.settings.max_file_size_bytes, name=filename)

    # -- the pool -------------------------------------------------------------

    def run_items(self, items: list[Item], progress: ProgressCallback | None = None) -> list[FileResult]:
        """Run prepared jobs on the bounded pool; results in input order."""
        if not items:
            return []
        # Model first, then librosa's warm-up: the model load imports torch under
        # the embedder's lock, and scipy (pulled in by librosa) probes a
        # half-imported torch if both imports run at once on two threads.
        embedder, why_not = self._embedder()
        warm_up()
        categoriser = categoriser_for(self.store, embedder) if embedder else None
        if categoriser is not None:
            self.store.descriptions.set_category_model(embedder.model_id)
        batcher = WindowBatcher(embedder, batch_windows=embedder.batch_windows) if embedder else None
        # At most max_concurrent_jobs files read and decode at once (memory); up to a batch of
        # further files may wait for the model with their windows, so its batches stay full.
        slots = threading.BoundedSemaphore(self.settings.max_concurrent_jobs)
        waiting = embedder.batch_windows if batcher else 0
        workers = min(self.settings.max_concurrent_jobs + waiting, len(items))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        try:
            futures = [
                pool.submit(self._process, Work(
                    item, self.store, self.settings, model_id=embedder.model_id if embedder else None,
                    embed_audio=batcher.embed_audio if batcher else None, pending=why_not,
                    categoriser=categoriser,
                ), progress, slots)
                for item in items
            ]
            return [future.result() for future in futures]
        except BaseException:
            # Ctrl-C: drop the files not started yet; their jobs stay queued and
            # are marked interrupted when the library is next opened.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            if batcher is not None:
                batcher.close()

    def _embedder(self):
        """The embedder, or None and the reason embeddings will be pending."""
        if self.embedder_provider is None:
            return None, None
        try:
            return self.embedder_provider(), None
        except EngineError as exc:
            return None, str(exc)

    def _process(self, work: Work, progress: ProgressCallback | None, slots: threading.Semaphore) -> FileResult:
        item = work.item
        try:
            result = self._run_stages(work, progress, slots)
        except EngineError as exc:
            result = FileResult(item.source, JobStatus.FAILED, error=str(exc), job_id=item.job_id)
        except Exception as exc:  # a bug or a library surprise must not stop the batch
            log.exception("unexpected error importing %s", item.source)
            result = FileResult(
                item.source, JobStatus.FAILED, job_id=item.job_id,
                error=f"Unexpected error: {item.source} could not be imported ({type(exc).__name__}: {exc}).",
            )
        finally:
            for staged in work.staged:
                staged.unlink(missing_ok=True)
            if item.placement == "move":
                item.path.unlink(missing_ok=True)  # the spooled upload, unless it was moved into place
        if result.status != JobStatus.ADDED:  # added jobs are finished inside the track's transaction
            message = result.error or "Already in the library."
            try:
                self.store.jobs.finish(item.job_id, result.status, message, result.track_id)
            except EngineError:
                log.exception("could not record the end of job %s", item.job_id)
        report_progress(progress, Progress(item.job_id, item.source, "done", 1.0, result))
        return result

    def _run_stages(self, work: Work, progress: ProgressCallback | None, slots: threading.Semaphore) -> FileResult:
        holding = False
        last_write = time.monotonic()
        try:
            for stage in STAGES:
                if not stage.when(work):
                    continue
                if stage.heavy and not holding:
                    slots.acquire()
                    holding = True
                elif holding and not stage.heavy and work.decoded is not None \
                        and work.decoded.analysed_s <= SHORT_FILE_S:
                    slots.release()  # a short file waits for the model holding little memory
                    holding = False
                # The job's row shows the stage of a file that takes a while; a one-shot that is done
                # in milliseconds skips these writes (each is a commit: 15 of a one-shot's 50 ms).
                if time.monotonic() - last_write >= JOB_UPDATE_EVERY_S:
                    self.store.jobs.update(work.item.job_id, status=JobStatus.RUNNING, stage=stage.name,
                                           progress=stage.progress)
                    last_write = time.monotonic()
                report_progress(progress,
                                Progress(work.item.job_id, work.item.source, stage.name, stage.progress))
                result = stage.run(work)
                if result is not None:
                    return result
            raise AssertionError("the last stage always returns a result")
        finally:
            if holding:
                slots.release()


def reembed(store: Store, settings: Settings, embedder, *, progress: ProgressCallback | None = None) -> list[FileResult]:
    """Embed every track that has no embedding from ``embedder``'s model and this pipeline.

    Each track's audio is decoded again from its stored or referenced file; a
    referenced file that is gone or changed since import is reported, not
    guessed at.
    """
    pending_ids = store.embeddings.pending(embedder.model_id, PIPELINE_VERSION)
    found = store.tracks.get_many(pending_ids, located=False)
    pending = [found[track_id] for track_id in pending_ids if track_id in found]

    def one(track: Track) -> FileResult:
        name = track.filename
        try:
            _, decoded = decode_stored(store, settings, track, progress)
            report_progress(progress, Progress(track.id, name, "embed", 0.5))
            vectors = embed_decoded(decoded, batcher.embed_audio)
            store.embeddings.save(track.id, vectors.for_model(embedder.model_id))
            result = FileResult(name, JobStatus.ADDED, track.id)
        except Exception as exc:
            message = failure_message(name, exc)
            store.embeddings.note_failure(track.id, EmbeddingFailure(embedder.model_id, message))
            result = FileResult(name, JobStatus.FAILED, track.id, error=message)
        report_progress(progress, Progress(track.id, name, "done", 1.0, result))
        return result

    if not pending:
        return []
    with WindowBatcher(embedder, batch_windows=embedder.batch_windows) as batcher:
        with ThreadPoolExecutor(max_workers=min(settings.max_concurrent_jobs, len(pending))) as pool:
            return list(pool.map(one, pending))


def decode_stored(store: Store, settings: Settings, track: Track,
                  progress: ProgressCallback | None) -> tuple[Path, audio.DecodedAudio]:
    """A stored track's file (``readable_file``) and its audio, decoded again (reembed, reanalyse)."""
    path = readable_file(store, track)
    report_progress(progress, Progress(track.id, track.filename, "decode", 0.2))
    return path, audio.decode(path, max_duration_s=settings.max_duration_s, display_name=track.filename)


def failure_message(name: str, exc: Exception) -> str:
    """What a pass over stored tracks reports for one that failed: the engine's own message, or the
    name and the unexpected error."""
    return str(exc) if isinstance(exc, EngineError) else f"{name}: {type(exc).__name__}: {exc}"


def readable_file(store: Store, track: Track) -> Path:
    """The file a stored track's audio can be read from again, or an EngineError saying why not:
    a referenced file that is gone or changed since import is reported, not guessed at."""
    name, path = track.filename, store.files.absolute_path(track)
    if not path.is_file():
        raise EngineError(f"{name}: the file {path} is gone.", title="Missing file",
                          hint="Put it back, or delete the track and import it again.")
    stat = path.stat()
    if track.storage == "referenced" and (stat.st_size, stat.st_mtime) != (track.file_size, track.file_mtime):
        raise EngineError(f"{name}: {path} changed since it was imported.", title="File changed",
                          hint="Import it again to index the new content.")
    return path


def collect_files(paths, allowed_extensions, *, exclude: tuple[Path, ...] = ()) -> tuple[list[Path], list[FileResult]]:
    """Expand folders recursively into audio files; report paths that cannot be imported.

    Inside folders, clutter and hidden files are skipped silently (engine.scan);
    a file named explicitly with a wrong type is reported.
    """
    files: list[Path] = []
    rejected: list[FileResult] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            # Named as the user named the folder (a relative folder gives relative names), as before.
            real_root = os.path.realpath(path)
            found = [path / os.path.relpath(p, real_root) if p.startswith(real_root + os.sep) else Path(p)
                     for p in scan([path], allowed_extensions=allowed_extensions, exclude=exclude).files]
        elif path.exists():
            found = [path]
        else:
            rejected.append(FileResult(str(path), JobStatus.FAILED, error=f"File not found: {path} does not exist."))
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, rejected


def report_progress(progress: ProgressCallback | None, event: Progress) -> None:
    if progress is None:
        return
    try:
        progress(event)
    except Exception:  # a broken progress display must not fail an import
        log.exception("progress callback failed")
