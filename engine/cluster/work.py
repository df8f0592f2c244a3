"""What a cluster's workers run: reading a file on a CPU task, and CLAP on a model actor.

Both halves call the local import's own functions (engine.stages, engine.vectors),
so a file gives the same id, measurements, windows and vectors on a cluster as
on one machine. The windows travel from the CPU task to the actor as float32
audio; the actor embeds the windows of many files in one batched call (each
window independently of its neighbours, so batching changes speed, never results).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from engine import audio
from engine.config import Settings
from engine.errors import EngineError
from engine.stages import measure_decoded, waveform_of
from engine.vectors import PIPELINE_VERSION, track_vectors, windows_of
from engine.windows import WINDOW_SAMPLES, Windows

log = logging.getLogger(__name__)

# Columns a read file carries from the CPU task to the actor, besides the shard's.
# The windows' audio: float32 little-endian bytes, n x 480000 (bytes, not a tensor column: rows of
# one batch differ in n, and Ray Data's ragged tensor columns failed when blocks were combined).
AUDIO = "window_audio"


def read_file(row: dict, *, settings: Settings) -> dict:
    """One listed file, read: the shard's columns up to the vectors, plus its windows' audio.

    ``row`` has ``shard``, ``source_path``, ``name``. A file that cannot be read gives a row with
    ``error`` set (the message the local import shows); nothing raised stops the job.
    """
    out = {key: row[key] for key in ("shard", "source_path", "name")}
    path = Path(row["source_path"])
    try:
        size = audio.check_file(path, allowed_extensions=settings.allowed_extensions,
                                max_size_bytes=settings.max_file_size_bytes, display_name=row["name"])
        out.update(file_size=size, file_mtime=os.stat(path).st_mtime, id=audio.hash_file(path))
        decoded = audio.decode(path, max_duration_s=settings.max_duration_s, display_name=row["name"])
        measurements, description = measure_decoded(decoded, name=row["name"])
        waveform = waveform_of(decoded)
        windows = windows_of(decoded)
    except Exception as exc:  # noqa: BLE001 - one bad file is reported, never the end of the job
        out["error"] = str(exc) if isinstance(exc, EngineError) else f"{row['name']}: {type(exc).__name__}: {exc}"
        return out
    out.update(
        filename=Path(row["name"]).name, format=decoded.container, codec=decoded.codec, sample_rate=decoded.sample_rate,
        channels=decoded.channels, duration=decoded.duration_s, analysed_duration=decoded.analysed_s,
        truncated=decoded.truncated, tempo=measurements.tempo, spectral_centroid=measurements.spectral_centroid,
        zero_crossing_rate=measurements.zero_crossing_rate, rms_energy=measurements.rms_energy,
        feature_version=measurements.feature_version, kind=description.kind,
        kind_confidence=description.kind_confidence, tempo_source=description.tempo_source, bars=description.bars,
        key_tonic=description.key_tonic, key_mode=description.key_mode, key_confidence=description.key_confidence,
        key_source=description.key_source, name_category=description.name_category,
        description_version=description.version, waveform_version=waveform.version,
        waveform_duration=float(waveform.duration), waveform_peaks=np.ascontiguousarray(waveform.peaks,
                                                                                         dtype=np.int8).tobytes(),
        window_count=len(windows), starts_s=[float(x) for x in windows.starts_s],
        ends_s=[float(x) for x in windows.ends_s],
    )
    out[AUDIO] = np.ascontiguousarray(windows.audio, dtype="<f4").tobytes()
    return out


class Embedding:
    """A model actor: loads CLAP once (the production loader) and embeds batches of read files.

    Ray Data calls it with a batch of rows (dict of columns, ``batch_format="numpy"``) and keeps
    it for the next batch, so the model loads once per actor.
    """

    def __init__(self, settings: Settings, threads: int | None = None):
        from engine.clap import get_embedder

        if threads:  # Ray gives an actor one thread a CPU it reserved; a CPU actor may use more
            import torch

            torch.set_num_threads(threads)
        self._embedder = get_embedder(settings)

    def __call__(self, batch: dict) -> dict:
        rows = _rows(batch)
        ready = [row for row in rows if row.get("error") is None and row.get(AUDIO) is not None]
        windows = [np.frombuffer(row.pop(AUDIO), dtype="<f4").reshape(-1, WINDOW_SAMPLES) for row in ready]
        for row in rows:
            row.pop(AUDIO, None)
        try:
            vectors = self._embedder.embed_audio(np.concatenate(windows)) if windows else np.zeros((0, 0))
            parts = np.split(vectors, np.cumsum([len(w) for w in windows])[:-1]) if windows else []
        except Exception:  # noqa: BLE001 - find the file that fails; the others still get their vectors
            log.exception("embedding a batch failed; embedding its files one by one")
            parts = [self._one(row, audio_windows) for row, audio_windows in zip(ready, windows)]
        for row, audio_windows, part in zip(ready, windows, parts):
            if part is not None:
                _store_vectors(row, audio_windows, part, self._embedder.model_id)
        return _columns(rows)

    def _one(self, row: dict, audio_windows: np.ndarray) -> np.ndarray | None:
        try:
            return self._embedder.embed_audio(audio_windows)
        except Exception as exc:  # noqa: BLE001 - kept without vectors, as a local import keeps it
            row["embedding_error"] = (f"Embedding failed ({type(exc).__name__}: {exc}); "
                                      "run 'python -m engine reembed'.")
            row["model_id"] = self._embedder.model_id
            return None


def _store_vectors(row: dict, audio_windows: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
    made = track_vectors(Windows(audio_windows, row["starts_s"], row["ends_s"]), vectors)
    row.update(model_id=model_id, pipeline_version=PIPELINE_VERSION, dim=int(made.windows.shape[1]),
               embedding=np.ascontiguousarray(made.track, dtype="<f4").tobytes(),
               windows=np.ascontiguousarray(made.windows, dtype="<f4").tobytes())


def _rows(batch: dict) -> list[dict]:
    """Ray Data's column batch as rows of plain Python values (None for a missing value)."""
    names = list(batch)
    count = len(batch[names[0]]) if names else 0
    return [{name: _plain(batch[name][i]) for name in names} for i in range(count)]


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN stands for null in some column types
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    return value


def _columns(rows: list[dict]) -> dict:
    """Rows back to one column a name, as object arrays (Ray Data keeps nulls and bytes as they are)."""
    from engine.cluster.shards import COLUMNS

    columns = {}
    for name in COLUMNS:
        column = np.empty(len(rows), dtype=object)
        column[:] = [row.get(name) for row in rows]
        columns[name] = column
    return columns
