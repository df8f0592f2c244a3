"""From decoded audio to stored vectors: windows, batched CLAP, per-track pooling.

``PIPELINE_VERSION`` names this code's behaviour (windowing, pooling); it is
stored with every embedding, so changing either makes old rows stale.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from engine.audio import CLAP_RATE, DecodedAudio
from engine.store.types import EmbeddingWrite
from engine.windows import Windows, make_windows

PIPELINE_VERSION = 1
_GATHER_SECONDS = 0.02  # how long the batcher waits for other files' windows


@dataclass(frozen=True)
class TrackVectors:
    track: np.ndarray  # (D,) float32, L2-normalised mean of the windows
    windows: np.ndarray  # (n, D) float32, L2-normalised
    starts_s: list[float]
    ends_s: list[float]

    def for_model(self, model_id: str) -> EmbeddingWrite:
        """These vectors as the store writes them, under the model that made them."""
        return EmbeddingWrite(model_id, PIPELINE_VERSION, self.track, self.windows, self.starts_s, self.ends_s)


def pool(window_vectors: np.ndarray) -> np.ndarray:
    """The per-track embedding: the L2-normalised mean of its window embeddings (n, D) -> (D,)."""
    mean = window_vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def embed_track(samples_48k: np.ndarray, embed_audio) -> TrackVectors:
    """Window 48 kHz mono audio deterministically and embed it with ``embed_audio``."""
    windows = make_windows(samples_48k)
    return track_vectors(windows, embed_audio(windows.audio))


def windows_of(decoded: DecodedAudio) -> Windows:
    """A decode's windows: its 48 kHz resampling cut by the windowing rules (engine.windows)."""
    return make_windows(decoded.at_rate(CLAP_RATE))


def track_vectors(windows: Windows, vectors: np.ndarray) -> TrackVectors:
    """A track's stored vectors from its windows and their embeddings (n, D), in window order."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return TrackVectors(pool(vectors), vectors, list(windows.starts_s), list(windows.ends_s))


def embed_decoded(decoded: DecodedAudio, embed_audio) -> TrackVectors:
    """The one path from a decode to vectors, shared by ingest, reembed, example queries and the
    cluster's actors (which run ``windows_of`` and ``track_vectors`` on either side of the model):
    the 48 kHz resampling of the decode, cut into windows, embedded with ``embed_audio``."""
    windows = windows_of(decoded)
    return track_vectors(windows, embed_audio(windows.audio))


class WindowBatcher:
    """Runs the model on one thread, batching windows across the files in flight.

    Ingest workers call ``embed_audio`` concurrently; their windows are
    concatenated into batches of up to ``batch_windows`` so the model sees
    full batches while the workers decode and measure the next files. Each
    window is embedded independently of its batch neighbours (exact 10 s
    inputs, no fusion), so batching changes speed, never results.
    """

    def __init__(self, embedder, *, batch_windows: int):
        self._embedder = embedder
        self._batch = max(1, batch_windows)
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="clap-batcher", daemon=True)
        self._thread.start()

    def embed_audio(self, windows: np.ndarray) -> np.ndarray:
        if self._closed.is_set():
            raise RuntimeError("the embedding batcher is closed")
        future: Future = Future()
        self._queue.put((windows, future))
        return future.result()

    def close(self) -> None:
        """Stop the thread; a caller still waiting gets an error instead of hanging."""
        self._closed.set()
        self._queue.put(None)
        self._thread.join()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(RuntimeError("the embedding batcher was closed"))

    def __enter__(self) -> "WindowBatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            count = len(first[0])
            stop = False
            while count < self._batch:
                try:
                    item = self._queue.get(timeout=_GATHER_SECONDS)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                pending.append(item)
                count += len(item[0])
            self._run(pending)
            if stop:
                return

    def _run(self, pending) -> None:
        try:
            vectors = self._embedder.embed_audio(np.concatenate([windows for windows, _ in pending]))
        except Exception as exc:
            if len(pending) > 1:  # find the file that fails; the others still get their vectors
                for item in pending:
                    self._run([item])
                return
            pending[0][1].set_exception(exc)
            return
        offset = 0
        for windows, future in pending:
            future.set_result(vectors[offset : offset + len(windows)])
            offset += len(windows)
