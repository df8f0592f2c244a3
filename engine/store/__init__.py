"""The library on disk: one DuckDB file plus content-addressed audio copies.

``Store`` opens both and hands out one object per family of tables:

* ``store.tracks``: tracks and their measurements (``tracks.py``), with the
  managed copies under ``data/audio`` (``files.py``);
* ``store.sources``: every path a track was read from, and files that failed (``sources.py``);
* ``store.folders``: the folders indexed in place (``folders.py``);
* ``store.descriptions``: what each sample is, its categories per model (``descriptions.py``);
* ``store.curation``: favourites, tags and collections (``curation.py``);
* ``store.embeddings``: vectors per model and why one is missing (``embeddings.py``);
* ``store.jobs``: one import job per file (``jobs.py``);
* ``store.api_keys``: digests of the API's keys (``api_keys.py``);
* ``store.waveforms``: each track's waveform overview for drawing (``waveforms.py``);
* ``store.shards``: merging a cluster ingest's shards in bulk (``shards.py``);
* ``store.journal``: the in-process change log search indexes replay (``journal.py``).

``database.py`` holds the connection, its lock, transactions and the
migration runner (``migrations.py``); ``types.py`` the rows and write objects.
The store stores what it is given: it computes nothing about audio.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import StoreError
from engine.store.api_keys import ApiKeys
from engine.store.curation import Curation
from engine.store.database import Database
from engine.store.descriptions import Descriptions
from engine.store.embeddings import Embeddings
from engine.store.files import ManagedFiles
from engine.store.folders import Folders
from engine.store.jobs import Jobs
from engine.store.journal import Journal
from engine.store.shards import MergedShard, Shards
from engine.store.sources import Sources
from engine.store.tracks import SORTABLE, Tracks
from engine.store.types import (
    MANAGED_PATH,
    STORAGE_KINDS,
    CategoryScores,
    Change,
    Description,
    Embedded,
    EmbeddingFailure,
    EmbeddingWrite,
    Filters,
    Folder,
    Job,
    JobStatus,
    Measurements,
    NewTrack,
    Source,
    Track,
    TrackRecord,
    WaveformWrite,
    WindowSet,
)
from engine.store.waveforms import Waveforms

DB_NAME = "traum.duckdb"


class Store:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.files = ManagedFiles(self.data_dir)
        try:
            self.files.audio_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror}.",
                hint="Set TRAUM_DATA_DIR to a writable folder.",
            ) from None
        self.db = Database(self.data_dir / DB_NAME)
        self.journal = Journal()
        self.sources = Sources(self.db)
        self.curation = Curation(self.db)
        self.tracks = Tracks(self.db, self.journal, self.files, self.sources, self.curation)
        self.embeddings = Embeddings(self.db, self.journal)
        self.descriptions = Descriptions(self.db, self.journal)
        self.jobs = Jobs(self.db)
        self.folders = Folders(self.db)
        self.api_keys = ApiKeys(self.db)
        self.waveforms = Waveforms(self.db)
        self.shards = Shards(self.db, self.journal)

    @property
    def revision(self) -> int:
        """Grows with every change to tracks or embeddings (caches key on it)."""
        return self.journal.revision

    def close(self) -> None:
        self.db.close()


__all__ = [
    "MANAGED_PATH", "SORTABLE", "STORAGE_KINDS", "CategoryScores", "Change", "Description", "Embedded",
    "EmbeddingFailure", "EmbeddingWrite", "Filters", "Folder", "Job", "JobStatus", "Measurements", "MergedShard",
    "NewTrack",
    "Source", "Store", "Track", "TrackRecord", "WaveformWrite", "WindowSet",
]
