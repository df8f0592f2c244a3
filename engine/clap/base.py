"""The :class:`Embedder` interface both backends share, and its text cache.

An embedder turns 10 s windows of 48 kHz audio and text prompts into unit
vectors; the backends only implement one batch of each.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.clap.runtime import one_thread_when_contended
from engine.errors import ModelUnavailableError
from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES, Windows

TEXT_CACHE_SIZE = 1024
TEXT_BATCH = 64


def pooled(output: Any):
    """transformers 5.x returns a model output whose pooler_output is the projected
    embedding; older versions returned the tensor itself."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None and isinstance(output, (tuple, list)) and len(output) > 1:
        pooled = output[1]
    if not isinstance(pooled, torch.Tensor):
        raise ModelUnavailableError(f"unexpected CLAP output type {type(output).__name__}")
    return pooled


def unit_rows(tensor) -> np.ndarray:
    """L2-normalise in float32 (bf16 norms are too coarse) and return numpy."""
    import torch

    t = tensor.detach().to(torch.float32)
    t = torch.nn.functional.normalize(t, dim=-1)
    return t.cpu().numpy().astype(np.float32, copy=False)


class _TextCache:
    """Thread-safe LRU of prompt -> embedding row."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            row = self._data.get(key)
            if row is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return row

    def put(self, key: str, row: np.ndarray) -> None:
        row = row.copy()
        row.setflags(write=False)
        with self._lock:
            self._data[key] = row
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


# --------------------------------------------------------------------------- the interface

class Embedder(ABC):
    """Turns 10 s windows and prompts into L2-normalised float32 rows of width ``dim``.

    Subclasses implement one batch of each; this class validates input, batches
    audio by ``batch_windows``, runs under ``torch.inference_mode()``, serialises
    model forwards (concurrent forwards on a few cores only oversubscribe them;
    feature extraction stays outside the lock so it can overlap another
    thread's forward) and caches text embeddings.
    """

    backend: str
    model_id: str  # stored with every embedding: two different models never share one
    dim: int
    device: str
    precision: str
    sanity = None  # engine.clap.sanity.Sanity once the loader has checked the loaded model
    # True where the backend checks the windows for NaN and infinities itself, where they are computed
    # (engine.clap.melspec on a GPU): the host's scan of 1.9 MB a window cost an H200 a third of its rate.
    checks_finite_itself = False

    def __init__(self, *, batch_windows: int, text_cache_size: int = TEXT_CACHE_SIZE):
        self.batch_windows = int(batch_windows)
        self._text_cache = _TextCache(text_cache_size)
        self._model_lock = threading.Lock()
        self.audio_batches_run = 0
        self.text_batches_run = 0

    @abstractmethod
    def _prepare_audio(self, batch: np.ndarray) -> Any:
        """float32 (b, 480000) -> model input (runs outside the model lock)."""

    @abstractmethod
    def _forward_audio(self, prepared: Any):
        """model input -> tensor (b, dim), not necessarily normalised."""

    def _embed_audio_batch(self, batch: np.ndarray):
        return self._forward_audio(self._prepare_audio(batch))

    @abstractmethod
    def _embed_text_batch(self, texts: list[str]):
        """list of prompts -> tensor (b, dim), not necessarily normalised."""

    def embed_audio(self, windows: np.ndarray | Windows) -> np.ndarray:
        import torch

        if isinstance(windows, Windows):
            windows = windows.audio
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != WINDOW_SAMPLES:
            raise ValueError(
                f"expected windows of shape (n, {WINDOW_SAMPLES}) at {CLAP_SAMPLE_RATE} Hz, got {x.shape}; "
                "cut audio with engine.windows.make_windows first"
            )
        if not self.checks_finite_itself and not np.isfinite(x).all():
            raise ValueError("audio windows contain NaN or infinite samples")
        out = np.empty((x.shape[0], self.dim), dtype=np.float32)
        step = max(1, self.batch_windows)
        for start in range(0, x.shape[0], step):
            batch = x[start : start + step]
            prepared = self._prepare_audio(batch)
            with self._model_lock, torch.inference_mode():
                emb = self._forward_audio(prepared)
                self.audio_batches_run += 1
            out[start : start + len(batch)] = unit_rows(emb)
        return out

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if isinstance(texts, str):
            raise TypeError("embed_text takes a sequence of prompts; wrap a single prompt in a list")
        texts = [str(t) for t in texts]
        rows: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for t in dict.fromkeys(texts):  # unique, in order
            row = self._text_cache.get(t)
            if row is None:
                missing.append(t)
            else:
                rows[t] = row
        for start in range(0, len(missing), TEXT_BATCH):
            chunk = missing[start : start + TEXT_BATCH]
            with self._model_lock, torch.inference_mode(), one_thread_when_contended(torch):
                emb = self._embed_text_batch(chunk)
                self.text_batches_run += 1
            for t, row in zip(chunk, unit_rows(emb)):
                self._text_cache.put(t, row)
                rows[t] = row
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([rows[t] for t in texts]).astype(np.float32)

    def text_cache_info(self) -> dict:
        c = self._text_cache
        return {
            "hits": c.hits,
            "misses": c.misses,
            "size": len(c),
            "maxsize": c.maxsize,
            "model_calls": self.text_batches_run,
        }

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "model_id": self.model_id,
            "dim": self.dim,
            "device": self.device,
            "precision": self.precision,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, dim={self.dim}, {self.device}, {self.precision})"
