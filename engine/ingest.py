"""The import pipeline: validate, hash, decode, features, embed, persist.

Each file is one job. Stages are plain functions; a bad file ends as a
``failed`` result with a readable reason and the batch goes on. Files run on
a bounded thread pool (``max_concurrent_jobs``): the heavy parts (libsndfile,
FFmpeg, soxr, numpy FFTs) release the GIL.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from engine import audio
from engine.config import Settings
from engine.errors import EngineError
from engine.features import compute_features, warm_up
from engine.store import Store, TrackRecord, move_into_place
from engine.vectors import PIPELINE_VERSION, WindowBatcher, embed_track

log = logging.getLogger(__name__)

ADDED, DUPLICATE, FAILED = "added", "duplicate", "failed"


@dataclass
class FileResult:
    source: str  # the path, or an upload's original name
    status: str  # added | duplicate | failed
    track_id: str | None = None
    error: str | None = None
    job_id: str | None = None
    note: str | None = None  # e.g. why the embedding is pending

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """One progress report: which job, which stage, how far (0 to 1)."""

    job_id: str
    source: str
    stage: str
    fraction: float
    result: FileResult | None = None  # set when the file is finished


@dataclass(frozen=True)
class _Item:
    path: Path  # where the bytes are now
    source: str  # what to call it in messages and the job list
    filename: str  # original base name, stored as metadata
    placement: str  # "reference", "copy" or "move" (spooled upload)
    job_id: str


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
        files, rejected = collect_files(paths, self.settings.allowed_extensions)
        placement = "copy" if copy else "reference"
        batch = uuid.uuid4().hex
        job_ids = self.store.create_jobs(batch, [str(f) for f in files] + [r.source for r in rejected])
        for result, job_id in zip(rejected, job_ids[len(files):]):
            result.job_id = job_id
            self.store.finish_job(job_id, FAILED, result.error)
            _report(progress, Progress(job_id, result.source, "done", 1.0, result))
        items = [_Item(f, str(f), f.name, placement, j) for f, j in zip(files, job_ids)]
        return self.run_items(items, progress) + rejected

    def ingest_upload(self, name: str, data: bytes, *, progress: ProgressCallback | None = None) -> FileResult:
        """Import one uploaded file now. ``name`` is metadata only, never a path."""
        items, failed = self.queue_uploads([(name, data)])
        return failed[0] if failed else self.run_items(items, progress)[0]

    def queue_uploads(self, uploads, *, batch_id: str | None = None) -> tuple[list[_Item], list[FileResult]]:
        """Create a job per upload and spool each under data/tmp with a generated name.

        ``uploads`` holds (name, data) pairs; data is bytes or a binary file
        object, which is streamed to disk in chunks, so a large upload is
        never copied in memory. Returns the items ready to run and the
        uploads refused at once (too large). Queued uploads wait on disk.
        """
        names = [safe_filename(name) for name, _ in uploads]
        job_ids = self.store.create_jobs(batch_id or uuid.uuid4().hex, names)
        items, failed = [], []
        for filename, (_, data), job_id in zip(names, uploads, job_ids):
            try:
                audio.check_size(_payload_size(data), max_size_bytes=self.settings.max_file_size_bytes,
                                 name=filename)
                spooled = spool(data, filename, self.settings.tmp_dir)
            except EngineError as exc:
                self.store.finish_job(job_id, FAILED, str(exc))
                failed.append(FileResult(filename, FAILED, error=str(exc), job_id=job_id))
                continue
            items.append(_Item(spooled, filename, filename, "move", job_id))
        return items, failed

    # -- the pipeline ---------------------------------------------------------

    def run_items(self, items: list[_Item], progress: ProgressCallback | None = None) -> list[FileResult]:
        """Run prepared jobs on the bounded pool; results in input order."""
        if not items:
            return []
        # Model first, then librosa's warm-up: the model load imports torch under
        # the embedder's lock, and scipy (pulled in by librosa) probes a
        # half-imported torch if both imports run at once on two threads.
        embedder, why_not = self._embedder()
        warm_up()
        batcher = WindowBatcher(embedder, batch_windows=self.settings.clap_batch_windows) if embedder else None
        workers = min(self.settings.max_concurrent_jobs, len(items))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        try:
            futures = [pool.submit(self._process, item, progress, embedder, batcher, why_not) for item in items]
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

    def _process(self, item: _Item, progress: ProgressCallback | None, embedder=None, batcher=None,
                 why_not: str | None = None) -> FileResult:
        def stage(name: str, fraction: float) -> None:
            self.store.update_job(item.job_id, status="running", stage=name, progress=fraction)
            _report(progress, Progress(item.job_id, item.source, name, fraction))

        try:
            result = self._stages(item, stage, embedder, batcher, why_not)
        except EngineError as exc:
            result = FileResult(item.source, FAILED, error=str(exc), job_id=item.job_id)
        except Exception as exc:  # a bug or a library surprise must not stop the batch
            log.exception("unexpected error importing %s", item.source)
            result = FileResult(
                item.source, FAILED, job_id=item.job_id,
                error=f"Unexpected error: {item.source} could not be imported ({type(exc).__name__}: {exc}).",
            )
        finally:
            if item.placement == "move":
                item.path.unlink(missing_ok=True)  # the spooled upload, unless it was moved into place
        if result.status != ADDED:  # added jobs are finished inside the track's transaction
            message = result.error or "Already in the library."
            try:
                self.store.finish_job(item.job_id, result.status, message, result.track_id)
            except EngineError:
                log.exception("could not record the end of job %s", item.job_id)
        _report(progress, Progress(item.job_id, item.source, "done", 1.0, result))
        return result

    def _stages(self, item: _Item, stage, embedder, batcher, why_not) -> FileResult:
        settings = self.settings
        stage("validate", 0.02)
        size = audio.check_file(
            item.path, allowed_extensions=settings.allowed_extensions,
            max_size_bytes=settings.max_file_size_bytes, display_name=item.source,
        )
        source = None
        if item.placement != "move":
            resolved = item.path.resolve()
            source = (str(resolved), size, os.stat(resolved).st_mtime)
            known = self.store.track_id_for_source(*source)
            if known:  # unchanged since the last run: skip without reading it
                return FileResult(item.source, DUPLICATE, known, job_id=item.job_id)

        stage("hash", 0.05)
        track_id = audio.hash_file(item.path)
        if self.store.has_track(track_id):
            if source:
                self.store.add_source(track_id, *source)
            return FileResult(item.source, DUPLICATE, track_id, job_id=item.job_id)

        stage("decode", 0.15)
        decoded = audio.decode(item.path, max_duration_s=settings.max_duration_s, display_name=item.source)
        stage("features", 0.45)
        features = compute_features(samples=decoded.at_rate(audio.FEATURE_RATE), sample_rate=audio.FEATURE_RATE)
        extra_writes, pending = None, why_not
        if batcher is not None:
            stage("embed", 0.6)
            try:
                vectors = embed_track(decoded.at_rate(audio.CLAP_RATE), batcher.embed_audio)
                extra_writes = self.store.embedding_writes(track_id, vectors, embedder.model_id, PIPELINE_VERSION)
            except Exception as exc:  # the track is still worth keeping; reembed can finish it
                log.exception("embedding failed for %s", item.source)
                pending = f"Embedding failed ({type(exc).__name__}: {exc}); run 'python -m engine reembed'."

        stage("save", 0.95)
        staged = None
        if item.placement == "reference":
            path, place = source[0], None
        else:
            path = self.store.managed_path_for(track_id, decoded.container)
            if item.placement == "copy":
                # Copy before the transaction, so the store lock is held only for a rename.
                with open(item.path, "rb") as original:
                    staged = spool(original, item.filename, self.settings.tmp_dir)
            place = move_into_place(staged or item.path)
        if pending:  # no vectors to write: record why, in the same transaction as the track
            extra_writes = self.store.embedding_error_writes(track_id, embedder.model_id if embedder else None, pending)
        record = TrackRecord(
            id=track_id, filename=item.filename, storage="referenced" if place is None else "managed",
            path=path, format=decoded.container, codec=decoded.codec, file_size=size,
            file_mtime=source[2] if source else None, sample_rate=decoded.sample_rate,
            channels=decoded.channels, duration=decoded.duration_s, analysed_duration=decoded.analysed_s,
            truncated=decoded.truncated,
        )
        try:
            added = self.store.add_track(
                record, features, source=source, place_file=place, job_id=item.job_id, extra_writes=extra_writes
            )
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)
        note = f"Embedding pending: {pending}" if added and pending else None
        return FileResult(item.source, ADDED if added else DUPLICATE, track_id, job_id=item.job_id, note=note)


def reembed(store: Store, settings: Settings, embedder, *, progress: ProgressCallback | None = None) -> list[FileResult]:
    """Embed every track that has no embedding from ``embedder``'s model and this pipeline.

    Each track's audio is decoded again from its stored or referenced file; a
    referenced file that is gone or changed since import is reported, not
    guessed at.
    """
    pending = store.pending_embeddings(embedder.model_id, PIPELINE_VERSION)

    def one(track: dict) -> FileResult:
        name = track["filename"]
        try:
            path = store.absolute_path(track)
            if not path.is_file():
                raise EngineError(f"{name}: the file {path} is gone.", title="Missing file",
                                  hint="Put it back, or delete the track and import it again.")
            stat = path.stat()
            if track["storage"] == "referenced" and (stat.st_size, stat.st_mtime) != (track["file_size"], track["file_mtime"]):
                raise EngineError(f"{name}: {path} changed since it was imported.", title="File changed",
                                  hint="Import it again to index the new content.")
            _report(progress, Progress(track["id"], name, "decode", 0.2))
            decoded = audio.decode(path, max_duration_s=settings.max_duration_s, display_name=name)
            _report(progress, Progress(track["id"], name, "embed", 0.5))
            vectors = embed_track(decoded.at_rate(audio.CLAP_RATE), batcher.embed_audio)
            store.save_embeddings(track["id"], vectors, embedder.model_id, PIPELINE_VERSION)
            result = FileResult(name, ADDED, track["id"])
        except Exception as exc:
            message = str(exc) if isinstance(exc, EngineError) else f"{name}: {type(exc).__name__}: {exc}"
            store.note_embedding_error(track["id"], embedder.model_id, message)
            result = FileResult(name, FAILED, track["id"], error=message)
        _report(progress, Progress(track["id"], name, "done", 1.0, result))
        return result

    if not pending:
        return []
    with WindowBatcher(embedder, batch_windows=settings.clap_batch_windows) as batcher:
        with ThreadPoolExecutor(max_workers=min(settings.max_concurrent_jobs, len(pending))) as pool:
            return list(pool.map(one, pending))


def collect_files(paths, allowed_extensions) -> tuple[list[Path], list[FileResult]]:
    """Expand folders recursively into audio files; report paths that cannot be imported.

    Inside folders, files of other types and hidden files (such as macOS
    ``._name.wav`` resource forks) are skipped silently; a file named
    explicitly with a wrong type is reported.
    """
    files: list[Path] = []
    rejected: list[FileResult] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in allowed_extensions
            )
        elif path.exists():
            found = [path]
        else:
            rejected.append(FileResult(str(path), FAILED, error=f"File not found: {path} does not exist."))
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, rejected


def spool(data, filename: str, tmp_dir: Path) -> Path:
    """Write bytes or a binary file object to a new file under ``tmp_dir``, named by a uuid.

    Only the (sanitised) extension of ``filename`` is kept: decoders choose
    by it. Streams in 1 MiB chunks, so a file object is never held whole.
    """
    ext = "".join(c for c in Path(filename).suffix.lower() if c.isalnum() or c == ".")[:10]
    target = tmp_dir / f"{uuid.uuid4().hex}{ext}"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                shutil.copyfileobj(data, handle, length=1 << 20)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise EngineError(f"{filename}: could not be saved for processing ({exc.strerror}).",
                          hint="Check free disk space in the data folder.", title="Upload not saved") from None
    return target


def _payload_size(data) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    data.seek(0, os.SEEK_END)
    size = data.tell()
    data.seek(0)
    return size


def safe_filename(name: str) -> str:
    """The base name of an uploaded file, for display only (never used as a path)."""
    base = (name or "").replace("\\", "/").split("/")[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())
    if base in ("", ".", ".."):
        base = "upload"
    if len(base) > 255:  # shorten the stem, never the extension that decides the decoder
        suffix = Path(base).suffix[:16]
        base = base[: 255 - len(suffix)] + suffix
    return base


def _report(progress: ProgressCallback | None, event: Progress) -> None:
    if progress is None:
        return
    try:
        progress(event)
    except Exception:  # a broken progress display must not fail an import
        log.exception("progress callback failed")
