"""CLAP embedders: 10 s windows of 48 kHz audio and text prompts -> unit vectors.

Two backends share one interface (:class:`Embedder`):

* ``transformers`` (default): ``ClapModel`` from a local directory or a hub id,
  safetensors only.
* ``laion``: the original ``laion_clap`` package with a pickled ``.pt``
  checkpoint. Only imported when the user explicitly chooses it.

The model is loaded lazily, once per process, by :func:`get_embedder`, which
also remembers a failed load so a dashboard does not retry a dead download on
every rerun. :func:`model_status` answers a health view without loading.

torch / transformers / huggingface_hub are imported inside functions so that
importing this module (CLI start-up, dashboard pages, model_status) stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import Settings
from engine.errors import ModelUnavailableError
from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES, Windows

log = logging.getLogger(__name__)

TEXT_CACHE_SIZE = 1024
TEXT_BATCH = 64
HUB_PROBE_TIMEOUT_S = 3.0

# Small files that decide what a transformers model computes; their bytes go
# into the model id together with the weights' sha256.
_ID_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
# What we fetch from the hub: never the pickled pytorch_model.bin.
_HUB_PATTERNS = [*_ID_FILES, "model*.safetensors", "model.safetensors.index.json"]
# laion_clap downloads these at import / construction time.
_LAION_HUB_DEPENDENCIES = ("roberta-base", "bert-base-uncased", "facebook/bart-base")
_MODEL_HINT = (
    "Set TRAUM_CLAP_MODEL to a local model directory (config.json, model.safetensors and the "
    "processor files), or run once with internet access and without HF_HUB_OFFLINE so the "
    "model is downloaded into the Hugging Face cache."
)


# --------------------------------------------------------------------------- helpers


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (huggingface_hub reads it at import)."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub is a hard dependency
        return False


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    torch runs bf16 on any AVX512 CPU, but without these instructions it is
    emulated and slower than float32, so "auto" only picks bf16 when they exist.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_device(requested: str) -> str:
    if requested == "cpu":
        return requested
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError(
            "TRAUM_CLAP_DEVICE is 'cuda' but torch sees no CUDA GPU.",
            hint="Set TRAUM_CLAP_DEVICE=auto or cpu, or install a CUDA build of torch.",
        )
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """auto -> bfloat16 on CUDA with bf16 support or on a CPU with native bf16, else float32."""
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


_digest_cache: dict[tuple, str] = {}
_digest_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime).

    A file in the Hugging Face cache is a symlink to ``blobs/<sha256>`` (the
    LFS object id), so its hash is read from the link instead of recomputed.
    """
    real = Path(os.path.realpath(path))
    if path.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        if key in _digest_cache:
            return _digest_cache[key]
    with open(real, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    with _digest_lock:
        _digest_cache[key] = digest
    return digest


_content_cache: dict[tuple, str] = {}


def transformers_content_hash(directory: Path) -> str:
    """12 hex chars over the config/processor/tokenizer bytes and the weights' sha256.

    Memoised on the files' sizes and mtimes, so a health view can ask often."""
    files = [directory / n for n in _ID_FILES if (directory / n).is_file()]
    weights = sorted(directory.glob("*.safetensors"))
    signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files + weights)
    with _digest_lock:
        if signature in _content_cache:
            return _content_cache[signature]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    for p in weights:
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode() + b"\0")
    digest = h.hexdigest()[:12]
    with _digest_lock:
        _content_cache[signature] = digest
    return digest


def _check_model_dir(directory: Path, *, what: str) -> None:
    """Refuse directories we cannot (or will not) load, with a readable reason."""
    if not directory.is_dir():
        raise ModelUnavailableError(f"{what} is not a directory.", hint=_MODEL_HINT)
    if not (directory / "config.json").is_file():
        raise ModelUnavailableError(
            f"{what} has no config.json, so it is not a transformers model directory.",
            hint=_MODEL_HINT,
        )
    if not any(directory.glob("*.safetensors")):
        if any((directory / n).exists() for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            raise ModelUnavailableError(
                f"{what} only has pickled weights (pytorch_model.bin); the engine loads safetensors only, "
                "because unpickling a checkpoint can run arbitrary code.",
                hint="Convert it once with ClapModel.from_pretrained(dir).save_pretrained(new_dir) in a trusted "
                "environment and set TRAUM_CLAP_MODEL to new_dir (or TRAUM_CLAP_REVISION to a revision that "
                "has model.safetensors).",
            )
        raise ModelUnavailableError(f"{what} has no model.safetensors.", hint=_MODEL_HINT)


def _probe_hub(repo_id: str, *, revision: str | None = None, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Ask the hub about a repo with a hard deadline; None if reachable and present,
    else a short reason. Runs in a daemon thread because DNS resolution is not
    covered by HTTP timeouts and can hang far longer on a machine without internet."""
    result: dict[str, str | None] = {}

    def ask() -> None:
        try:
            from huggingface_hub import HfApi
            from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

            try:
                HfApi().model_info(repo_id, revision=revision, timeout=timeout)
                result["reason"] = None
            except RevisionNotFoundError:
                result["reason"] = f"revision {revision!r} does not exist in {repo_id!r} on the hub"
            except RepositoryNotFoundError:
                result["reason"] = f"{repo_id!r} was not found on the hub (or it is private or gated)"
        except Exception as exc:  # network errors come from httpx and differ by version
            result["reason"] = f"the Hugging Face hub is unreachable ({type(exc).__name__}: {exc})"

    thread = threading.Thread(target=ask, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if thread.is_alive():
        return f"the Hugging Face hub did not answer within {timeout:.0f} s"
    return result.get("reason", "the hub probe failed")


def _ensure_downloadable(repo_id: str, *, revision: str | None, setting: str) -> None:
    """Fail fast (offline flag, or no answer within a few seconds) before a download."""
    if hub_offline():
        raise ModelUnavailableError(
            f"{repo_id!r} is not a local path, nor in the local Hugging Face cache, and HF_HUB_OFFLINE is set, "
            f"so it cannot be downloaded ({setting}).",
            hint=_MODEL_HINT if setting == "TRAUM_CLAP_MODEL" else f"Set {setting} to a local file.",
        )
    reason = _probe_hub(repo_id, revision=revision)
    if reason is not None:
        raise ModelUnavailableError(
            f"{repo_id!r} is not a local path, nor in the local Hugging Face cache, and cannot be downloaded: "
            f"{reason} ({setting}).",
            hint=(_MODEL_HINT if setting == "TRAUM_CLAP_MODEL" else f"Set {setting} to a local file.")
            + " Set HF_HUB_OFFLINE=1 to skip the network check entirely.",
        )


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or "\\" in value or value.count("/") > 1


def _cached_hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot directory if it holds loadable weights; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    try:
        path = Path(
            snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=_HUB_PATTERNS)
        )
    except IncompleteSnapshotError as exc:
        path = Path(exc.snapshot_path)
    except Exception:
        return None
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return path
    return None


def _transformers_source(settings: Settings) -> tuple[Path | None, str]:
    """(model directory, display name) for settings.clap_model, without any network:
    the directory is None when a hub model is not cached yet."""
    value = settings.clap_model.strip()
    local = Path(value).expanduser()
    if local.exists():
        local = local.resolve()
        return local, f"local:{local.name}"
    if _looks_like_path(value):
        raise ModelUnavailableError(
            f"the local CLAP model directory {str(local)!r} does not exist (TRAUM_CLAP_MODEL).", hint=_MODEL_HINT
        )
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value):
        raise ModelUnavailableError(
            f"TRAUM_CLAP_MODEL={value!r} is neither an existing local directory nor a hub id.", hint=_MODEL_HINT
        )
    return _cached_hub_snapshot(value, settings.clap_revision), value


def _download_hub_model(repo_id: str, *, revision: str | None) -> Path:
    """Download after _ensure_downloadable said yes; huggingface_hub shows tqdm progress."""
    from huggingface_hub import snapshot_download

    log.info("downloading CLAP model %s into the Hugging Face cache", repo_id)
    try:
        path = snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_PATTERNS)
    except Exception as exc:
        raise ModelUnavailableError(
            f"downloading {repo_id!r} failed: {type(exc).__name__}: {exc}", hint=_MODEL_HINT
        ) from exc
    return Path(path)


def _pooled(output: Any):
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


def _unit_rows(tensor) -> np.ndarray:
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


# --------------------------------------------------------------------------- embedders


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
        if not np.isfinite(x).all():
            raise ValueError("audio windows contain NaN or infinite samples")
        out = np.empty((x.shape[0], self.dim), dtype=np.float32)
        step = max(1, self.batch_windows)
        for start in range(0, x.shape[0], step):
            batch = x[start : start + step]
            prepared = self._prepare_audio(batch)
            with self._model_lock, torch.inference_mode():
                emb = self._forward_audio(prepared)
                self.audio_batches_run += 1
            out[start : start + len(batch)] = _unit_rows(emb)
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
            with self._model_lock, torch.inference_mode(), _one_thread_when_contended(torch):
                emb = self._embed_text_batch(chunk)
                self.text_batches_run += 1
            for t, row in zip(chunk, _unit_rows(emb)):
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


class TransformersClapEmbedder(Embedder):
    """``ClapModel`` + ``ClapProcessor`` from a local directory or a hub id (safetensors only).

    Feature extraction is deterministic and batch-independent because every
    input is exactly 480,000 samples: ``rand_trunc`` then never crops and
    ``repeatpad`` never pads. Fusion models need the ``fusion`` features (four
    stacked mels); transformers then marks a *random* clip as "longer" when none
    is (LAION-AI/CLAP #90), so ``is_longer`` is passed as all False explicitly.
    """

    backend = "transformers"

    def __init__(self, settings: Settings):
        super().__init__(batch_windows=settings.clap_batch_windows)
        # Find the files before importing torch and the CLAP classes (1-3 s),
        # so a wrong path or an uncached hub id while offline fails in milliseconds.
        directory, name = _transformers_source(settings)
        if directory is None:
            _ensure_downloadable(name, revision=settings.clap_revision, setting="TRAUM_CLAP_MODEL")
        import torch

        self.device = resolve_device(settings.clap_device)  # before a download, not after
        self.precision = resolve_precision(settings.clap_precision, self.device)
        self._dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        if directory is None:
            directory = _download_hub_model(name, revision=settings.clap_revision)
        _check_model_dir(directory, what=f"CLAP model directory {str(directory)!r} (TRAUM_CLAP_MODEL)")
        self.model_id = f"{name}@{transformers_content_hash(directory)}"
        self.directory = directory
        try:
            from transformers import ClapModel, ClapProcessor
        except Exception as exc:  # broken install
            raise ModelUnavailableError(f"cannot import transformers' CLAP classes: {exc}") from exc

        started = time.perf_counter()
        try:
            processor = ClapProcessor.from_pretrained(directory, local_files_only=True)
            # Load in float32 and convert: measured here, a model loaded with
            # dtype=bfloat16 ran HTSAT at 170-190 ms per window, the converted
            # one at 130 ms (some layers stay float32 when loaded directly).
            model = ClapModel.from_pretrained(directory, use_safetensors=True, local_files_only=True)
            model = model.to(device=self.device, dtype=self._dtype).eval()
        except Exception as exc:
            raise ModelUnavailableError(
                f"could not load the CLAP model from {str(directory)!r}: {type(exc).__name__}: {exc}",
                hint=_MODEL_HINT,
            ) from exc

        self._model = model
        self._features = processor.feature_extractor
        self._tokenizer = processor.tokenizer
        if self._features.sampling_rate != CLAP_SAMPLE_RATE or self._features.nb_max_samples != WINDOW_SAMPLES:
            raise ModelUnavailableError(
                f"{self.model_id} expects {self._features.nb_max_samples} samples at "
                f"{self._features.sampling_rate} Hz; the engine cuts 10 s windows at 48 kHz."
            )
        self._fusion = bool(getattr(model.config.audio_config, "enable_fusion", False))
        # The two modes also differ in mel filters (Slaney for rand_trunc, HTK for
        # fusion, matching how the original checkpoints were trained, per the
        # ClapFeatureExtractor docstring), so the mode must follow the model.
        # Neither crops or pads an exact 10 s window.
        self._truncation = "fusion" if self._fusion else "rand_trunc"
        self.dim = int(model.config.projection_dim)
        # RoBERTa positions start after the padding index, so the usable length
        # is max_position_embeddings - pad_token_id - 1 (512 for roberta-base).
        text_cfg = model.config.text_config
        max_pos = int(text_cfg.max_position_embeddings) - int(text_cfg.pad_token_id or 0) - 1
        self._text_max_length = min(int(self._tokenizer.model_max_length), max_pos)
        log.info("loaded %s on %s/%s in %.1f s", self.model_id, self.device, self.precision,
                 time.perf_counter() - started)

    def _prepare_audio(self, batch: np.ndarray):
        import torch

        feats = self._features(
            batch,
            sampling_rate=CLAP_SAMPLE_RATE,
            truncation=self._truncation,
            padding="repeatpad",
            return_tensors="np",
        )
        # The extractor works in float64; keep float32 here, cast to the model dtype on the device.
        return torch.from_numpy(np.ascontiguousarray(feats["input_features"], dtype=np.float32))

    def _forward_audio(self, prepared):
        import torch

        kwargs = {}
        if self._fusion:
            kwargs["is_longer"] = torch.zeros((prepared.shape[0], 1), dtype=torch.bool, device=self.device)
        x = prepared.to(self.device, dtype=self._dtype)
        return _pooled(self._model.get_audio_features(input_features=x, **kwargs))

    def _embed_text_batch(self, texts: list[str]):
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._text_max_length, return_tensors="pt"
        )
        out = self._model.get_text_features(
            input_ids=enc["input_ids"].to(self.device),
            attention_mask=enc["attention_mask"].to(self.device),
        )
        return _pooled(out)


def _int16_roundtrip(x: np.ndarray) -> np.ndarray:
    """laion_clap's own examples quantise audio to int16 and back before embedding."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0


def _resolve_laion_checkpoint(value: str | None) -> tuple[Path, str]:
    """(local .pt path, display name). Hub checkpoints go to the normal HF cache."""
    hint = (
        "Set TRAUM_LAION_CHECKPOINT to a local .pt file or to a hub path 'repo_id/filename', e.g. "
        "'lukewys/laion_clap/music_audioset_epoch_15_esc_90.14.pt' (with TRAUM_LAION_AUDIO_MODEL=HTSAT-base)."
    )
    if not value:
        raise ModelUnavailableError("the laion backend needs a checkpoint but TRAUM_LAION_CHECKPOINT is not set.",
                                    hint=hint)
    local = Path(value).expanduser()
    if local.is_file():
        return local.resolve(), local.name
    parts = value.strip("/").split("/")
    if local.exists() or value.startswith(("/", ".", "~")) or len(parts) < 3:
        raise ModelUnavailableError(f"TRAUM_LAION_CHECKPOINT={value!r} is not an existing .pt file.", hint=hint)
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=True)), Path(filename).name
    except Exception:
        pass
    _ensure_downloadable(repo_id, revision=None, setting="TRAUM_LAION_CHECKPOINT")
    try:
        return Path(hf_hub_download(repo_id, filename)), Path(filename).name
    except Exception as exc:
        raise ModelUnavailableError(f"downloading {value!r} failed: {type(exc).__name__}: {exc}",
                                    hint=hint) from exc


def _check_laion_hub_dependencies() -> None:
    """laion_clap fetches roberta-base (and two more tokenizers) from the hub while it is
    imported and constructed. Offline it silently builds empty tokenizers, and without
    internet it retries for minutes; so check the cache (or the hub) first."""
    from huggingface_hub import snapshot_download

    missing = []
    for repo in _LAION_HUB_DEPENDENCIES:
        try:
            snapshot_download(repo, local_files_only=True)
        except Exception:
            missing.append(repo)
    if not missing:
        return
    if hub_offline():
        raise ModelUnavailableError(
            f"laion_clap needs {', '.join(missing)} from the Hugging Face hub, they are not cached "
            "and HF_HUB_OFFLINE is set.",
            hint="Run once with internet access (without HF_HUB_OFFLINE), or use TRAUM_CLAP_BACKEND=transformers.",
        )
    reason = _probe_hub(missing[0])
    if reason is not None:
        raise ModelUnavailableError(
            f"laion_clap needs {', '.join(missing)} from the Hugging Face hub, which are not cached: {reason}.",
            hint="Run once with internet access, or use TRAUM_CLAP_BACKEND=transformers.",
        )


class LaionClapEmbedder(Embedder):
    """The original ``laion_clap`` package (``pip install -r requirements-laion.txt``).

    Its checkpoints are pickles (torch.load), so this backend is only built
    when the user explicitly sets TRAUM_CLAP_BACKEND=laion. precision "auto"
    means float32 here (bf16 was not measured for it); "bfloat16" runs under
    torch.autocast.
    """

    backend = "laion"

    def __init__(self, settings: Settings):
        super().__init__(batch_windows=settings.clap_batch_windows)
        install_hint = (
            "Install it into a separate environment with `pip install -r requirements-laion.txt` (it also needs "
            "torchvision matching your torch build), or use TRAUM_CLAP_BACKEND=transformers."
        )
        try:
            spec = importlib.util.find_spec("laion_clap")
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ModelUnavailableError("the laion backend needs the laion_clap package, which is not installed.",
                                        hint=install_hint)
        import torch

        self.device = resolve_device(settings.clap_device)
        self.precision = "float32" if settings.clap_precision == "auto" else settings.clap_precision
        self._autocast_dtype = torch.bfloat16 if self.precision == "bfloat16" else None

        checkpoint, ckpt_name = _resolve_laion_checkpoint(settings.laion_checkpoint)
        _check_laion_hub_dependencies()
        try:
            import laion_clap  # heavy, pickle-based; only reached on explicit request
        except Exception as exc:
            raise ModelUnavailableError(
                f"laion_clap is installed but cannot be imported: {type(exc).__name__}: {exc}", hint=install_hint
            ) from exc

        amodel = settings.laion_audio_model
        try:
            module = laion_clap.CLAP_Module(
                enable_fusion=settings.laion_enable_fusion, amodel=amodel, device=self.device
            )
            module.load_ckpt(str(checkpoint))
            module.eval()
        except Exception as exc:
            raise ModelUnavailableError(
                f"laion_clap could not load {str(checkpoint)!r} as {amodel}"
                f"{' (fusion)' if settings.laion_enable_fusion else ''}: {type(exc).__name__}: {exc}",
                hint="Check that TRAUM_LAION_AUDIO_MODEL and TRAUM_LAION_ENABLE_FUSION match the checkpoint.",
            ) from exc
        self._module = module
        cfg = getattr(module, "model_cfg", None) or {}
        self.dim = int(cfg.get("embed_dim", 512))
        fusion = "-fusion" if settings.laion_enable_fusion else ""
        self.model_id = f"laion-clap:{amodel}{fusion}:{ckpt_name}@{file_sha256(checkpoint)[:12]}"
        self.checkpoint = checkpoint

    def _autocast(self):
        import torch

        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device, dtype=self._autocast_dtype)

    def _prepare_audio(self, batch: np.ndarray):
        import torch

        return torch.from_numpy(_int16_roundtrip(batch))

    def _forward_audio(self, prepared):
        with self._autocast():
            return self._module.get_audio_embedding_from_data(x=prepared.to(self.device), use_tensor=True)

    def _embed_text_batch(self, texts: list[str]):
        with self._autocast():
            return self._module.get_text_embedding(texts, use_tensor=True)


# --------------------------------------------------------------------------- process-wide instance


@dataclass
class _Slot:
    key: tuple
    embedder: Embedder | None = None
    error: ModelUnavailableError | None = None


_load_lock = threading.Lock()  # held while a model loads: concurrent callers wait, then share
_slot: _Slot | None = None
_loading_key: tuple | None = None


def _model_key(settings: Settings) -> tuple:
    """The settings that decide which model is loaded (batch size is not one of them)."""
    common = (settings.clap_backend, settings.clap_device, settings.clap_precision)
    if settings.clap_backend == "laion":
        return common + (settings.laion_checkpoint, settings.laion_audio_model, settings.laion_enable_fusion)
    return common + (settings.clap_model, settings.clap_revision)


def _build(settings: Settings) -> Embedder:
    if settings.clap_backend == "laion":
        return LaionClapEmbedder(settings)
    return TransformersClapEmbedder(settings)


def _reraise(error: ModelUnavailableError):
    # A fresh exception each time, so the remembered one's traceback does not grow.
    fresh = ModelUnavailableError(error.message, hint=error.hint)
    fresh.remembered = True
    raise fresh from error


def get_embedder(settings: Settings, *, retry: bool = False) -> Embedder:
    """The process-wide embedder for these settings, loaded on first use.

    Thread-safe: concurrent first calls load once. A failed load is remembered
    and re-raised at once until the model settings change or ``retry=True``.
    """
    global _slot, _loading_key
    key = _model_key(settings)
    slot = _slot
    if slot is not None and slot.key == key and not (retry and slot.error is not None):
        if slot.embedder is not None:
            slot.embedder.batch_windows = settings.clap_batch_windows
            return slot.embedder
        _reraise(slot.error)
    with _load_lock:
        slot = _slot
        if slot is not None and slot.key == key:
            if slot.embedder is not None:
                slot.embedder.batch_windows = settings.clap_batch_windows
                return slot.embedder
            if not retry:
                _reraise(slot.error)
        _slot = None  # let a previous model be freed before the next one loads
        _loading_key = key
        try:
            embedder = _build(settings)
        except ModelUnavailableError as exc:
            _slot = _Slot(key, error=exc)
            raise
        except Exception as exc:  # anything unexpected still becomes a readable, remembered error
            err = ModelUnavailableError(f"loading the CLAP model failed: {type(exc).__name__}: {exc}")
            _slot = _Slot(key, error=err)
            raise err from exc
        finally:
            _loading_key = None
        _slot = _Slot(key, embedder=embedder)
        _one_blas_thread()
        return embedder


def _one_blas_thread() -> None:
    """Keep numpy's BLAS (OpenBLAS) to one thread once torch's pool is running.

    On a few cores the two pools spin against each other: measured here on 2
    cores, ingest with embeddings ran 47x real time with both pools and 58x
    with one BLAS thread, and a search right after a text embedding took twice
    as long. Heavy matrix work goes through torch, so numpy loses little.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _runnable_threads() -> int | None:
    """Threads on this machine that are running or waiting for a core right now (Linux), else None."""
    try:
        with open("/proc/loadavg", "rb") as file:  # "0.51 0.85 0.93 3/221 12345": the 3
            return int(file.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _one_thread_when_contended(torch):
    """Run a short forward (a prompt) on one intra-op thread while other work wants the CPU.

    A two-thread forward meets at every operator, so when another process (the
    browser drawing the page, an import) holds a core, it waits whole time
    slices for its descheduled half. Measured here on 2 cores with one kept
    busy: a prompt took 49 ms median and 221 ms at worst on two threads, 34 and
    49 ms on one; on an idle machine two threads win, 23 ms against 36 ms. So
    the choice is made per call, from the count of runnable threads (which
    includes this one and, just after a forward, its own spinning helper).
    Called under the model lock, so no other forward sees the change.
    """
    threads = torch.get_num_threads()
    runnable = _runnable_threads()
    if threads < 2 or runnable is None or runnable <= threads:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def reset_embedders() -> None:
    """Forget the loaded model and any remembered failure (tests, settings reload)."""
    global _slot
    with _load_lock:
        _slot = None


def _predicted_model_id(settings: Settings) -> str | None:
    """The id the model will get, if it can be known without loading or downloading."""
    if settings.clap_backend == "laion":
        return None
    directory, name = _transformers_source(settings)
    if directory is None:
        return None
    try:
        _check_model_dir(directory, what=str(directory))
    except ModelUnavailableError:
        return None
    return f"{name}@{transformers_content_hash(directory)}"


def model_status(settings: Settings, *, predict_id: bool = True, import_torch: bool = True) -> dict:
    """Health view: what would be / is loaded. Never loads or downloads a model.

    ``predict_id=False`` skips working out the id of a model not loaded yet,
    which hashes its weights (seconds for a full-size model, once per file).
    ``import_torch=False`` leaves an "auto" device (and the precision that
    follows from it) as None until torch is imported anyway: importing it
    costs about a second, which a dashboard's first page should not wait for.
    """
    key = _model_key(settings)
    slot = _slot
    status: dict = {
        "backend": settings.clap_backend,
        "model": settings.laion_checkpoint if settings.clap_backend == "laion" else settings.clap_model,
        "model_id": None,
        "dim": None,
        "device": None,
        "precision": None,
        "loaded": False,
        "loading": _loading_key == key,
        "error": None,
        "hint": None,
    }
    if slot is not None and slot.key == key and slot.embedder is not None:
        status.update(slot.embedder.describe(), loaded=True)
        return status
    if slot is not None and slot.key == key and slot.error is not None:
        status.update(error=slot.error.message, hint=slot.error.hint)
    if not import_torch and settings.clap_device == "auto" and "torch" not in sys.modules:
        return status
    try:
        device = resolve_device(settings.clap_device)
        status["device"] = device
        if settings.clap_backend == "laion":
            status["precision"] = "float32" if settings.clap_precision == "auto" else settings.clap_precision
        else:
            status["precision"] = resolve_precision(settings.clap_precision, device)
        status["model_id"] = _predicted_model_id(settings) if predict_id else None
    except ModelUnavailableError as exc:
        if status["error"] is None:
            status.update(error=exc.message, hint=exc.hint)
    return status


__all__ = [
    "Embedder",
    "LaionClapEmbedder",
    "TransformersClapEmbedder",
    "get_embedder",
    "model_status",
    "reset_embedders",
    "resolve_device",
    "resolve_precision",
    "cpu_has_native_bf16",
]
