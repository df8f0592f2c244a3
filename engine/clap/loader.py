"""The process-wide embedder: loaded lazily, once per process, by :func:`get_embedder`.

A failed load is remembered so a dashboard does not retry a dead download on
every rerun. :func:`model_status` answers a health view without loading.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass

from engine.clap.base import Embedder
from engine.clap.laion_backend import LaionClapEmbedder
from engine.clap.runtime import batch_windows_for, one_blas_thread, resolve_device, resolve_precision
from engine.clap.sanity import Sanity, check
from engine.clap.source import check_model_dir, transformers_content_hash, transformers_source
from engine.clap.transformers_backend import TransformersClapEmbedder
from engine.config import Settings
from engine.errors import ModelUnavailableError

log = logging.getLogger(__name__)


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
            slot.embedder.batch_windows = batch_windows_for(settings, slot.embedder.device)
            return slot.embedder
        _reraise(slot.error)
    with _load_lock:
        slot = _slot
        if slot is not None and slot.key == key:
            if slot.embedder is not None:
                slot.embedder.batch_windows = batch_windows_for(settings, slot.embedder.device)
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
        embedder.batch_windows = batch_windows_for(settings, embedder.device)
        one_blas_thread()
        embedder.sanity = _self_check(embedder)
        _slot = _Slot(key, embedder=embedder)
        return embedder


def _self_check(embedder: Embedder) -> Sanity | None:
    """The loaded model's probe check (engine.clap.sanity); None if the check itself broke."""
    try:
        sanity = check(embedder)
    except Exception:  # the check warns at most; a failure in it must not fail the load
        log.exception("the model's self-check failed")
        return None
    if not sanity.ok:
        for problem in sanity.problems:
            log.warning("%s", problem)
    return sanity


def reset_embedders() -> None:
    """Forget the loaded model and any remembered failure (tests, settings reload)."""
    global _slot
    with _load_lock:
        _slot = None


def predicted_model_id(settings: Settings) -> str | None:
    """The id the model will get, if it can be known without loading or downloading."""
    if settings.clap_backend == "laion":
        return None
    directory, name = transformers_source(settings)
    if directory is None:
        return None
    try:
        check_model_dir(directory, what=str(directory))
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
        "sanity": None,
    }
    if slot is not None and slot.key == key and slot.embedder is not None:
        sanity = getattr(slot.embedder, "sanity", None)
        status.update(slot.embedder.describe(), loaded=True, sanity=sanity.to_dict() if sanity else None)
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
        status["model_id"] = predicted_model_id(settings) if predict_id else None
    except ModelUnavailableError as exc:
        if status["error"] is None:
            status.update(error=exc.message, hint=exc.hint)
    return status
