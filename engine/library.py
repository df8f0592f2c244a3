"""The library as everything outside the engine sees it: one service object per process.

Pages, the CLI and the HTTP API call :class:`Library` and nothing else of the
engine; the store, the import pipeline and the search index behind it are
private. The types its methods take and return are re-exported here, so a
caller imports from one module.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine import analytics, audio, cluster
from engine import categories as vocabulary
from engine.auth import KEY_PREFIX, issue_token, key_digest, new_api_key, secret_key, token_valid, verify_password
from engine.backup import export_library, import_library
from engine.clap import get_embedder, model_status
from engine.classify import categorise_library
from engine.cluster import ClusterOptions, ClusterSummary, MergeSummary
from engine.config import Settings, load_settings
from engine.duplicates import DEFAULT_THRESHOLD as DEFAULT_DUPLICATE_THRESHOLD
from engine.duplicates import DuplicateGroup
from engine.duplicates import group as near_duplicate_groups
from engine.errors import AuthError, EngineError, InputError, ModelUnavailableError, NotFoundError
from engine.folders import FolderKeeper
from engine.ingest import Ingestor, ProgressCallback, decode_stored, reembed
from engine.maplayout import Layout as MapLayout
from engine.maplayout import frame as map_frame
from engine.maplayout import update as update_map
from engine.reanalyse import ReanalyseState, outdated, reanalyse
from engine.search import DEFAULT_LIMIT, Hit, VectorIndex, best_windows, combined, make_hits, rank_segments
from engine.spool import safe_filename, spool
from engine.stages import FileResult, waveform_of
from engine.store import SORTABLE, Filters, Folder, Job, JobStatus, Store, Track
from engine.store.types import KINDS
from engine.sync import SyncCallback, SyncProgress, SyncReport
from engine.tasks import Report, Task, TaskRunner
from engine.vectors import PIPELINE_VERSION, embed_decoded
from engine.waveform import WAVEFORM_VERSION, Waveform
from engine.worker import IngestWorker

if TYPE_CHECKING:  # pandas costs about 0.4 s to import: only when a map is made
    import pandas as pd

__all__ = ["CATEGORIES", "KINDS", "SORTABLE", "TASKS", "FileResult", "Filters", "Folder", "Hit", "Job", "JobStatus",
           "Library", "SyncProgress", "SyncReport", "Task", "Track", "Waveform"]

CATEGORIES = vocabulary.NAMES  # the category vocabulary, in its order
DUPLICATE_THRESHOLD = DEFAULT_DUPLICATE_THRESHOLD
# "Like this, but darker": how far the prompt moves the query. 0.5 keeps the track's character and
# still turns the ranking (the two unit vectors' sum leans a third of the way to the prompt).
DEFAULT_BUT_WEIGHT = 0.5
TASKS = ("ingest", "sync", "add_folder", "export")  # what start_task runs


class Library:
    """A store plus the settings, model and pipeline that work on it."""

    def __init__(self, settings: Settings | None = None, *, embedder_provider=None):
        self.settings = settings or load_settings()
        self._store = Store(self.settings.data_dir)
        # Opening is the moment to clean up after a process that died: DuckDB
        # gives one process the file, so nothing else can be mid-import.
        self.interrupted_jobs = self._store.jobs.interrupt_stale()
        self.swept_files = self._store.tracks.sweep_orphans()
        shutil.rmtree(self.settings.tmp_dir, ignore_errors=True)
        self._embedder_provider = embedder_provider or (lambda: get_embedder(self.settings))
        self._ingestor = Ingestor(self._store, self.settings, embedder_provider=self._embedder)
        self._folders = FolderKeeper(self._store, self._ingestor, self.settings)
        self._worker: IngestWorker | None = None
        self._worker_lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._index_lock = threading.Lock()
        self._matching: tuple[tuple, set[str]] | None = None  # the last described filter's ids
        self._analysis = ReanalyseState()
        self._analysis_lock = threading.Lock()
        self._analysis_stop = threading.Event()
        self._analysis_thread: threading.Thread | None = None
        self._map: tuple[int, MapLayout, object] | None = None  # (revision, layout, frame): the latest sound map
        self._map_lock = threading.Lock()  # one map made at a time
        self._map_thread: threading.Thread | None = None
        self._map_thread_lock = threading.Lock()
        self._map_error: str | None = None
        self._tasks = TaskRunner()

    def close(self) -> None:
        self._folders.stop_watching()
        self._analysis_stop.set()
        if self._analysis_thread is not None:
            self._analysis_thread.join()
        if self._map_thread is not None:  # stops after the layout under way (it checks _analysis_stop)
            self._map_thread.join()
        self._store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def revision(self) -> int:
        """Grows with every change to tracks or embeddings: a cache key for anything derived."""
        return self._store.revision

    # -- importing ------------------------------------------------------------

    def ingest(self, paths, *, copy: bool = False, progress: ProgressCallback | None = None) -> list[FileResult]:
        """Import files and folders now (folders recursively, and remembered as library folders
        unless copied); results in input order."""
        if not copy:
            self._folders.remember([Path(p) for p in paths if Path(p).is_dir()])
        return self._ingestor.ingest_paths(paths, copy=copy, progress=progress)

    def ingest_on_ray(self, paths, *, options: ClusterOptions | None = None, folder: Path | None = None,
                      on_shard=None) -> tuple[ClusterSummary, MergeSummary]:
        """Import files and folders as a Ray Data job (engine.cluster), then merge its shards from
        ``folder`` (default: ``shards`` in the data folder; run again with the same folder to finish
        a job that was stopped). Folders are remembered as library folders, as by ``ingest``."""
        options = options or ClusterOptions()
        self._folders.remember([Path(p) for p in paths if Path(p).is_dir()])
        summary, merged = cluster.ingest_on_ray(self._store, self.settings, paths, options=options,
                                                folder=Path(folder or self.settings.data_dir / "shards"),
                                                on_shard=on_shard)
        self.categorise()  # the merged tracks' categories, from their embeddings, as a local import scores them
        return summary, merged

    def import_shards(self, folder: Path, *, on_shard=None) -> MergeSummary:
        """Merge a cluster ingest's shards (written here or elsewhere) into this library."""
        merged = cluster.merge_folder(self._store, Path(folder), on_shard=on_shard)
        self.categorise()
        return merged

    def ingest_upload(self, name: str, data: bytes, *, progress: ProgressCallback | None = None) -> FileResult:
        """Import one uploaded file now. ``name`` is shown, never used as a path."""
        return self._ingestor.ingest_upload(name, data, progress=progress)

    def submit_uploads(self, uploads, *, batch_id: str) -> list[FileResult]:
        """Queue uploads ((name, bytes or binary file) pairs) for the background worker under
        ``batch_id``: a result per upload, in order, ``queued`` with its job id or ``failed`` when
        refused at once. Follow them with :meth:`jobs` or :meth:`job`."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = IngestWorker(self._ingestor)
        return self._worker.queue(uploads, batch_id=batch_id)

    def check_upload(self, name: str, size: int | None = None) -> None:
        """Refuse an upload now, by its name's type and its size in bytes (when known):
        UnsupportedTypeError, TooLargeError. ``submit_uploads`` checks the same."""
        self._ingestor.check_upload(safe_filename(name), size)

    def wait_for_uploads(self, timeout: float | None = None) -> bool:
        """Block until every submitted upload has finished (tests, shutdown)."""
        return self._worker is None or self._worker.wait_idle(timeout)

    def job(self, job_id: str) -> Job:
        """One import job by id."""
        job = self._store.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no import job with id {job_id!r}.", hint="Job ids come from an upload's answer.")
        return job

    def jobs(self, *, batch_id: str | None = None, limit: int = 200) -> list[Job]:
        """A batch's jobs in queue order, or the most recent jobs of every batch."""
        return self._store.jobs.list(batch_id=batch_id, limit=limit)

    def reembed(self, *, retry: bool = False, progress: ProgressCallback | None = None) -> list[FileResult]:
        """Embed every track that has no embedding from the current model. Loads the model first,
        so a missing one is a single clear error (``retry`` tries a failed load again)."""
        embedder = self.load_model(retry=retry)
        results = reembed(self._store, self.settings, embedder, progress=progress)
        categorise_library(self._store, embedder)  # the new model's categories, from its embeddings
        return results

    # -- describing -------------------------------------------------------------

    def reanalyse(self, *, progress: ProgressCallback | None = None) -> list[FileResult]:
        """Measure and describe again every track the current analysis has not seen (kind, tempo,
        key), from its file, without re-embedding; then score categories from stored embeddings
        when the model loads. Results per track: ``added`` (updated) or ``failed`` (why)."""
        results = reanalyse(self._store, self.settings, progress=progress)
        self.categorise()
        return results

    def categorise(self) -> int:
        """Score categories for every track embedded by the current model but not yet scored by it
        (cheap: stored embeddings, one matrix product per batch). 0 when the model cannot load."""
        try:
            embedder = self._embedder()
        except ModelUnavailableError:
            return 0
        return categorise_library(self._store, embedder)

    def outdated(self) -> int:
        """How many tracks the current analysis has not seen (``reanalyse`` brings them up to date)."""
        return outdated(self._store)

    def start_reanalyse(self) -> bool:
        """Reanalyse in the background (the dashboard); False when it is running already.
        Follow it with :meth:`reanalyse_state`."""
        with self._analysis_lock:
            if self._analysis_thread is not None and self._analysis_thread.is_alive():
                return False
            self._analysis = state = ReanalyseState(running=True)
            self._analysis_thread = threading.Thread(target=self._reanalyse_in_background, args=(state,),
                                                     name="reanalyse", daemon=True)
            self._analysis_thread.start()
            return True

    def reanalyse_state(self) -> dict:
        """The background reanalysis: ``running``, ``done`` of ``total``, ``failed`` results, ``error``."""
        return self._analysis.to_dict()

    def _reanalyse_in_background(self, state: ReanalyseState) -> None:
        try:
            reanalyse(self._store, self.settings, stop=self._analysis_stop, state=state)
            if not self._analysis_stop.is_set():
                self.categorise()
        except Exception as exc:  # shown on the page; the library stays usable
            state.error = str(exc)
        finally:
            state.running = False

    # -- folders ----------------------------------------------------------------

    def add_folder(self, path: Path | str, *, watch: bool = True, progress: SyncCallback | None = None,
                   background: bool = False) -> SyncReport | None:
        """Index a folder in place (checked: it exists, is readable, is not the library's own
        folder), then sync it, or with ``background`` start that sync and return at once
        (follow it with :meth:`sync_state`). ``watch`` follows it while a watcher runs."""
        return self._folders.add(path, watch=watch, progress=progress, background=background)

    def folders(self) -> list[Folder]:
        """The library's folders with their track and missing counts, watch flag and last sync."""
        return self._store.folders.list()

    def remove_folder(self, path: Path | str) -> dict:
        """Forget a folder and the tracks found only there; no file is touched."""
        return self._folders.remove(path)

    def set_watched(self, path: Path | str, watched: bool) -> Folder:
        return self._folders.set_watched(path, watched)

    def sync(self, paths=None, *, prune: bool = False, progress: SyncCallback | None = None) -> SyncReport:
        """Rescan every folder (or the given ones, or paths inside them) and bring the library in step."""
        return self._folders.sync(paths, prune=prune, progress=progress)

    def start_sync(self, paths=None) -> bool:
        """Sync in the background (the dashboard); False when one is already running.
        Follow it with :meth:`sync_state`."""
        return self._folders.start_sync(paths)

    def sync_state(self) -> dict:
        """The background sync: ``running``, the latest ``progress``, its ``report`` or ``error`` once
        done, and ``runs``, how many have finished (a page redraws when it grows)."""
        return self._folders.state()

    def prune_missing(self) -> list[dict]:
        """Remove every missing track (whose files are all gone) from the library."""
        return self._folders.prune()

    def watch(self, stop: threading.Event, *, on_sync=None) -> None:
        """Follow every watched folder until ``stop`` is set (``python -m engine watch``);
        ``on_sync(report)`` hears of each sync the changes caused."""
        self._folders.watch(stop, on_sync=on_sync)

    def start_watching(self) -> None:
        """Follow every watched folder in the background while this process runs (the dashboard),
        after a background sync of what changed while nothing watched."""
        self._folders.start_watching(catch_up=True)

    # -- reading --------------------------------------------------------------

    def track(self, track_id: str) -> Track:
        """A track by full id or unique prefix (6+ characters)."""
        return self._store.tracks.get(self._store.tracks.resolve_id(track_id))

    def tracks(self, filters: Filters = Filters(), *, name: str | None = None, missing: bool = False,
               sort: str = "created_at", descending: bool = True, limit: int = 50, offset: int = 0) -> list[Track]:
        """A page of tracks passing ``filters`` whose name contains ``name``; ``sort`` is a SORTABLE key.
        Present tracks, or with ``missing`` only those whose files are all gone."""
        return self._store.tracks.browse(filters, name=name, missing=missing, sort=sort, descending=descending,
                                         limit=limit, offset=offset)

    def count(self, filters: Filters = Filters(), *, name: str | None = None, missing: bool = False) -> int:
        return self._store.tracks.count(filters, name=name, missing=missing)

    def stats(self) -> dict:
        stats = self._store.tracks.stats()
        status = self.model_status()
        # Which embeddings are pending depends on the model; unknown until it has loaded.
        stats["pending_embeddings"] = (
            self._store.embeddings.count_pending(status["model_id"], PIPELINE_VERSION) if status["loaded"] else None
        )
        return stats

    def embedded(self, track_ids: list[str]) -> set[str] | None:
        """Those of ``track_ids`` embedded by the current model (searchable), or None while the
        model has not loaded (which model counts is not known yet)."""
        status = self.model_status()
        if not status["loaded"]:
            return None
        return self._store.embeddings.embedded_ids(status["model_id"], PIPELINE_VERSION, track_ids)

    def delete(self, track_id: str) -> Track:
        """Remove a track's rows and the library's own copy; a user's file is never touched."""
        return self._store.tracks.delete(self._store.tracks.resolve_id(track_id))

    def waveform(self, track_id: str) -> Waveform | None:
        """A track's waveform overview (engine.waveform) by full id or unique prefix. A track imported
        before overviews existed, or by an older WAVEFORM_VERSION, gets one now from its file, stored
        for next time; None when that file is gone, changed or unreadable (never an error for a bad file).
        A stored overview is returned even while its file is missing: it still shows what was there."""
        # The full id (a hit's, a row's) is read directly: a results page asks this for every row.
        stored = self._store.waveforms.get(track_id, version=WAVEFORM_VERSION)
        if stored is not None:
            return Waveform(*stored)
        track = self.track(track_id)  # NotFoundError for an unknown id, like every read by id
        if track.id != track_id:  # a prefix: the stored one may be there under the full id
            stored = self._store.waveforms.get(track.id, version=WAVEFORM_VERSION)
            if stored is not None:
                return Waveform(*stored)
        try:
            _, decoded = decode_stored(self._store, self.settings, track, None)
        except (EngineError, OSError):  # gone, changed since import, or no longer decodable
            return None
        made = waveform_of(decoded)
        self._store.waveforms.save(track.id, made)  # False when deleted meanwhile: drawn once, not kept
        return Waveform(made.duration, made.peaks)

    def audio_path(self, track: Track | Hit) -> Path:
        """The playable file of a track or hit."""
        if isinstance(track, Hit):
            return Path(track.path)
        return self._store.files.absolute_path(track)

    def distributions(self, filters: Filters = Filters()) -> dict | None:
        """The binned distributions Analytics draws (pandas frames) of the tracks passing ``filters``
        (all tracks without), or None when there are none."""
        return analytics.distributions(self._store.db, within=partial(self._store.tracks.within, filters))

    # -- the model ------------------------------------------------------------

    def model_status(self) -> dict:
        """What the model is or would be, without loading it (cheap enough for every page view)."""
        return model_status(self.settings, predict_id=False, import_torch=False)

    def load_model(self, *, retry: bool = False):
        """Load the shared model now (or get it, when loaded); raises ModelUnavailableError."""
        if retry:
            get_embedder(self.settings, retry=True)
        return self._embedder()

    @staticmethod
    def describe_model(settings: Settings, *, load: bool = True) -> dict:
        """The full model status for settings, without opening a library (which another
        process may hold). ``load`` loads the model, so the status has its size and its
        self-check (``sanity``), or says why it cannot load (``error``, ``hint``)."""
        if load:
            try:
                get_embedder(settings)
            except ModelUnavailableError:
                pass  # remembered: the status carries it
        return model_status(settings)

    # -- searching ------------------------------------------------------------

    def prepare_search(self) -> None:
        """Load the model and the vector index now, so the first search pays for neither; score the
        categories of tracks the model has not scored yet."""
        embedder = self._embedder()
        self._index_for(embedder).sync()
        categorise_library(self._store, embedder)

    def search_text(self, text: str, **options) -> list[Hit]:
        """Tracks that sound like a prompt ("punchy 808 kick"). Options as for :meth:`similar_by_vector`."""
        if not text.strip():
            raise InputError("type something to search for.", title="Empty prompt")
        return self.similar_by_vector(self._embedder().embed_text([text.strip()])[0], **options)

    def search_audio(self, path: Path | None = None, *, data: bytes | None = None, name: str = "query.wav",
                     **options) -> list[Hit]:
        """Tracks that sound like an example clip: a file, or uploaded bytes (``name`` is display only)."""
        if (path is None) == (data is None):
            raise InputError("give the example clip as a path or as bytes.", title="Invalid search")
        return self.similar_by_vector(self._embed_example(path, data, name), **options)

    def search_like(self, track_id: str, *, but: str | None = None, weight: float = DEFAULT_BUT_WEIGHT,
                    **options) -> list[Hit]:
        """More like a track in the library (never the track itself); ``but`` ("darker", "with reverb")
        moves the query towards that prompt: the track's unit vector plus ``weight`` (0 to 2) times the
        prompt's, renormalised. Options as for :meth:`similar_by_vector`."""
        track_id = self._store.tracks.resolve_id(track_id)
        embedder = self._embedder()
        query = self._index_for(embedder).vector_of(track_id)
        if query is None:
            raise EngineError("this track has no embedding yet, so there is nothing to compare with.",
                              hint="Run 'python -m engine reembed'.", title="Embedding pending")
        if but is not None and but.strip():
            if not 0 <= weight <= 2:
                raise InputError(f"the weight of {but.strip()!r} must be between 0 and 2, not {weight}.",
                                 title="Invalid search")
            query = combined(query, embedder.embed_text([but.strip()])[0], weight=weight)
        return self.similar_by_vector(query, exclude=track_id, **options)

    def similar_by_vector(self, query: np.ndarray, *, filters: Filters = Filters(), limit: int = DEFAULT_LIMIT,
                          min_score: float | None = None, segments: bool = False,
                          exclude: str | None = None) -> list[Hit]:
        """Rank the library against a unit query vector of the current model, best first.

        ``segments`` ranks by each track's single best 10 s window instead of
        its pooled vector; either way a hit carries its best window's span.
        """
        if limit < 1:
            raise InputError("the result limit must be at least 1.", title="Invalid search")
        embedder = self._embedder()
        index = self._index_for(embedder)
        # Filters on what a sample is and what a person kept are answered in SQL; the index applies the rest.
        only = self._matching_ids(filters) if filters.beyond_measurements else None
        if segments:
            allowed = index.allowed_ids(filters)
            ranked = rank_segments(self._store.embeddings, embedder.model_id, query,
                                   allowed if only is None else allowed & only,
                                   limit=limit, min_score=min_score, exclude=exclude)
            spans = {track_id: (start, end) for track_id, _, start, end in ranked}
            scored = [(track_id, score) for track_id, score, _, _ in ranked]
        else:
            scored = index.top(query, filters=filters, limit=limit, min_score=min_score, exclude=exclude, only=only)
            # A single-window track's best segment is that window: no need to read it back.
            best = best_windows(self._store.embeddings, embedder.model_id, query,
                                index.multi_window([i for i, _ in scored]))
            spans = {track_id: (start, end) for track_id, (_, start, end) in best.items()}
        return make_hits(self._store, scored, spans)

    def _matching_ids(self, filters: Filters) -> set[str]:
        """Ids passing ``filters``, remembered until the library changes: a page's searches
        repeat the same filters (the set is about 60 ms at 100k tracks)."""
        key = (filters, self._store.revision, self._store.curation.revision)
        with self._index_lock:
            if self._matching is not None and self._matching[0] == key:
                return self._matching[1]
        ids = self._store.tracks.matching_ids(filters)
        with self._index_lock:
            self._matching = (key, ids)
        return ids

    def _embed_example(self, path: Path | None, data: bytes | None, name: str) -> np.ndarray:
        settings = self.settings
        spooled = None
        try:
            if data is not None:
                name = safe_filename(name)
                audio.check_size(len(data), max_size_bytes=settings.max_file_size_bytes, name=name)
                spooled = spool(data, name, settings.tmp_dir)
                path, display = spooled, name
            else:
                path, display = Path(path), str(path)
            audio.check_file(path, allowed_extensions=settings.allowed_extensions,
                             max_size_bytes=settings.max_file_size_bytes, display_name=display)
            decoded = audio.decode(path, max_duration_s=settings.max_duration_s, display_name=display)
            return embed_decoded(decoded, self._embedder().embed_audio).track
        finally:
            if spooled is not None:
                spooled.unlink(missing_ok=True)

    def _embedder(self):
        return self._embedder_provider()

    def _index_for(self, embedder) -> VectorIndex:
        with self._index_lock:
            if self._index is None or self._index.model_id != embedder.model_id:
                self._index = VectorIndex(self._store, embedder.model_id, embedder.dim)
            return self._index

    # -- what a person keeps: favourites, tags, collections -------------------------

    def set_favourite(self, track_id: str, on: bool = True) -> Track:
        """Star a track (or with ``on=False`` unstar it); the track as it is now."""
        track_id = self._store.tracks.resolve_id(track_id)
        self._store.curation.set_favourite(track_id, on)
        return self.track(track_id)

    def tag(self, track_id: str, *, add: list[str] = (), remove: list[str] = ()) -> Track:
        """Add and remove tags (any case; stored in lower case); the track as it is now."""
        track_id = self._store.tracks.resolve_id(track_id)
        self._store.curation.add_tags(track_id, list(add))
        self._store.curation.remove_tags(track_id, list(remove))
        return self.track(track_id)

    def tags(self) -> list[tuple[str, int]]:
        """Every tag with how many tracks carry it, most used first."""
        return self._store.curation.tags()

    def collections(self) -> list[dict]:
        """Every collection: ``name``, ``tracks`` (how many), ``created_at``."""
        return self._store.curation.collections()

    def create_collection(self, name: str) -> str:
        return self._store.curation.create_collection(name)

    def delete_collection(self, name: str) -> str:
        """Forget a collection (its tracks stay in the library)."""
        return self._store.curation.delete_collection(name)

    def add_to_collection(self, name: str, track_ids: list[str]) -> str:
        """Append tracks (ids or unique prefixes) to a collection, in order; the collection's name."""
        ids = [self._store.tracks.resolve_id(track_id) for track_id in track_ids]
        return self._store.curation.add_to_collection(name, ids)

    def remove_from_collection(self, name: str, track_ids: list[str]) -> str:
        ids = [self._store.tracks.resolve_id(track_id) for track_id in track_ids]
        return self._store.curation.remove_from_collection(name, ids)

    def collection(self, name: str) -> tuple[str, list[Track]]:
        """A collection's name and its tracks, in the collection's order."""
        shown, ids = self._store.curation.collection_ids(name)
        found = self._store.tracks.get_many(ids)
        return shown, [found[track_id] for track_id in ids if track_id in found]

    # -- duplicates -------------------------------------------------------------------

    def duplicates(self, *, threshold: float = DUPLICATE_THRESHOLD) -> list[DuplicateGroup]:
        """Near-duplicates (engine.duplicates): present tracks of the current model whose embeddings
        are at least ``threshold`` alike (cosine) and whose durations agree, in groups, largest first.
        Blocked matrix products over the index's vectors: about 40 s per 100k tracks on two cores."""
        if not 0 < threshold <= 1:
            raise InputError(f"the threshold is a cosine between 0 and 1, not {threshold}.", title="Invalid threshold")
        ids, vectors, durations = self._index_for(self._embedder()).snapshot()
        groups = near_duplicate_groups(ids, vectors, durations, threshold=threshold)
        tracks = self._store.tracks.get_many([track_id for g in groups for track_id in g.ids])
        return [DuplicateGroup(tracks=[tracks[i] for i in g.ids if i in tracks], pairs=g.pairs) for g in groups
                if sum(i in tracks for i in g.ids) > 1]

    def copies(self) -> list[Track]:
        """Exact copies: tracks whose same bytes sit at more than one place in the library's folders
        (one track with several locations), most places first."""
        tracks = self._store.tracks.get_many(self._store.sources.shared_ids())
        return sorted(tracks.values(), key=lambda t: (-len(t.locations), t.filename.lower(), t.id))

    def trash_file(self, track_id: str, path: str) -> Track | None:
        """Move one of a track's files, in the library's folders, to the system trash, at the user's
        explicit request (never ``unlink``: the trash can give it back). The library forgets that place;
        a track with no file left goes with it. Returns the track as it is now, or None when it went."""
        track = self.track(track_id)
        sources = self._store.sources.of([track.id]).get(track.id, [])
        if path not in sources:
            raise InputError(f"{path} is not one of {track.filename}'s files in the library's folders.",
                             title="Not a library file", hint="Choose one of the places 'show' lists.")
        try:
            from send2trash import send2trash

            send2trash(path)
        except (OSError, ImportError) as exc:  # send2trash's TrashPermissionError is an OSError
            raise EngineError(f"could not move {path} to the trash: {exc}.", title="Not moved to the trash",
                              hint="Check that the file is there and that you may change its folder.") from None
        self._store.sources.forget([path])
        left = [p for p in sources if p != path]
        if not left and track.storage == "referenced":
            self._store.tracks.delete(track.id)  # its last file: nothing of it is left to play
            return None
        if track.storage == "referenced" and track.path == path:
            self._store.tracks.set_location(track.id, path=left[0], missing=False)  # it plays from another copy
        return self.track(track.id)

    # -- the sound map ------------------------------------------------------------------

    def sound_map(self, filters: Filters = Filters(), *, wait: bool = True) -> pd.DataFrame | None:
        """Every present track the current model embedded, as a point on a map of how it sounds: a pandas
        frame of id, x, y (in [-1, 1], engine.soundmap), filename, kind, category, key, duration and tempo,
        of the tracks passing ``filters``; None when the map has no track at all.

        Made once per library revision and kept. While the library has changed by fewer than a tenth of the
        tracks since its last full layout, old points stay where they were, new tracks are placed among their
        nearest neighbours and deleted ones drop out (engine.maplayout). At 100k tracks a first map took 13 s
        on two idle cores (the index, the PCA layout, reading every track's fields; UMAP, from 200 tracks when
        umap-learn is installed, takes longer), and bringing it up to date about 9 s, mostly those reads.
        ``wait=False`` makes nothing: the latest map made, perhaps of an earlier revision
        (``sound_map_state`` says), or None before the first; the dashboard has it made by ``start_sound_map``.
        """
        made = self._make_sound_map() if wait else self._map
        if made is None or made[2].empty:
            return None
        frame = made[2]
        if filters != Filters():
            frame = frame[frame["id"].isin(self._matching_ids(filters))].reset_index(drop=True)
        return frame

    def start_sound_map(self) -> bool:
        """Make the sound map in the background (the dashboard); False when it is being made already, or
        is up to date. Follow it with :meth:`sound_map_state`, then read it with ``sound_map(wait=False)``."""
        with self._map_thread_lock:
            running = self._map_thread is not None and self._map_thread.is_alive()
            if running or (self._map is not None and self._map[0] == self.revision):
                return False
            self._map_error = None
            self._map_thread = threading.Thread(target=self._sound_map_in_background, name="sound-map", daemon=True)
            self._map_thread.start()
            return True

    def sound_map_state(self) -> dict:
        """The sound map: ``status`` ("idle" before one is made, "running" while one is, "ready", "error"),
        ``tracks`` on the latest map made (None before the first), ``current`` (whether that map shows the
        library as it is now) and ``error`` (what stopped the last attempt)."""
        made, thread = self._map, self._map_thread
        running = thread is not None and thread.is_alive()
        status = "running" if running else "error" if self._map_error else "ready" if made is not None else "idle"
        return {"status": status, "tracks": None if made is None else len(made[2]),
                "current": made is not None and made[0] == self.revision, "error": self._map_error}

    def _sound_map_in_background(self) -> None:
        try:
            self._make_sound_map()
        except EngineError as exc:  # e.g. the model is not available: shown on the page, with what to do
            self._map_error = f"{exc.title}: {exc.message}" + (f" {exc.hint}" if exc.hint else "")
        except Exception as exc:  # shown on the page; the library stays usable
            self._map_error = str(exc) or type(exc).__name__

    def _make_sound_map(self) -> tuple | None:
        with self._map_lock:
            revision = self.revision  # read first: a change during the work makes the map out of date, not wrong
            made = self._map
            if made is not None and made[0] == revision:
                return made
            embedder = self._embedder()
            ids, vectors, _ = self._index_for(embedder).snapshot()
            if self._analysis_stop.is_set():  # closing
                return made
            layout = update_map(made[1] if made is not None else None, model_id=embedder.model_id, ids=ids,
                                vectors=vectors)
            del vectors
            if self._analysis_stop.is_set():
                return made
            self._map = made = (revision, layout, map_frame(layout, self._store.tracks.get_many(ids, located=False)))
            return made

    # -- tasks: the CLI's long commands, run by the server that holds the library ----------

    def start_task(self, action: str, **options) -> Task:
        """Run one of TASKS in the background, after any asked for before it; follow it with :meth:`task`.

        ``ingest`` (paths, copy), ``sync`` (paths, prune), ``add_folder`` (path, watch) and ``export``
        (target) are the methods of the same names, so a task's result is what the CLI prints when it
        opens the library itself: the file results, the sync's report, the export's manifest.
        """
        calls = {"ingest": self._ingest_task, "sync": self._sync_task, "add_folder": self._add_folder_task,
                 "export": lambda report, target: self.export(Path(target))}
        if action not in calls:
            raise InputError(f"no task {action!r}; the tasks are {', '.join(TASKS)}.", title="Unknown task")
        return self._tasks.submit(action, partial(calls[action], **options))

    def task(self, task_id: str) -> Task:
        """A task by id: status (queued, running, done, failed), latest progress, result or error."""
        return self._tasks.get(task_id)

    def _ingest_task(self, report: Report, *, paths: list[str], copy: bool = False) -> list[dict]:
        done = 0

        def note(event) -> None:
            nonlocal done
            if event.result is not None:
                done += 1
                report({"phase": "analyse", "done": done, "source": event.source})

        return [result.to_dict() for result in self.ingest(paths, copy=copy, progress=note)]

    def _sync_task(self, report: Report, *, paths: list[str] | None = None, prune: bool = False) -> dict:
        progress = lambda event: report(asdict(event))  # noqa: E731
        return self.sync(paths or None, prune=prune, progress=progress).to_dict()

    def _add_folder_task(self, report: Report, *, path: str, watch: bool = True) -> dict:
        return self.add_folder(path, watch=watch, progress=lambda event: report(asdict(event))).to_dict()

    # -- API access (while the dashboard is shared) --------------------------------

    def issue_token(self, password: str) -> dict:
        """A signed access token for the dashboard's password (``access_token``, ``token_type``,
        ``expires_in`` seconds); AuthError for a wrong one."""
        encoded = self.settings.auth_password_hash
        if not encoded:
            raise AuthError("this server has no password login.",
                            hint="Use an API key: python -m engine api-key create NAME")
        if not verify_password(password, encoded):
            time.sleep(1.0)  # slows guessing, as the login form does
            raise AuthError("wrong password.")
        lifetime = self.settings.access_token_expire_minutes * 60
        return {"access_token": issue_token(self._secret_key(), "password"), "token_type": "bearer",
                "expires_in": int(lifetime)}

    def authorised(self, credential: str) -> bool:
        """Whether a bearer credential is a live access token or a known API key."""
        if credential.startswith(KEY_PREFIX):
            return self._store.api_keys.known(key_digest(credential))
        return token_valid(self._secret_key(), credential,
                           max_age_s=self.settings.access_token_expire_minutes * 60)

    def create_api_key(self, name: str) -> str:
        """A new API key named ``name``: returned once, only its digest is kept."""
        name = name.strip()
        if not name or len(name) > 64:
            raise InputError("an API key needs a name of 1 to 64 characters.", title="Invalid name")
        key = new_api_key()
        self._store.api_keys.add(name, key_digest(key))
        return key

    def revoke_api_key(self, name: str) -> None:
        self._store.api_keys.remove(name.strip())

    def api_keys(self) -> list[dict]:
        """The API keys' names and when each was made (never the keys)."""
        return self._store.api_keys.list()

    def _secret_key(self) -> str:
        return secret_key(self.settings.secret_key, self.settings.data_dir)

    # -- backup ---------------------------------------------------------------

    def export(self, target: Path) -> dict:
        """Every table as Parquet plus the library's own audio copies, into an empty folder."""
        return export_library(self._store, target)

    def restore(self, source: Path) -> dict:
        """An export into this library, which must be empty."""
        return import_library(self._store, source)
