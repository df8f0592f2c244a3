"""The ``laion`` backend: the original ``laion_clap`` package with a pickled ``.pt``
checkpoint. laion_clap itself is only imported when the user explicitly chooses
this backend (TRAUM_CLAP_BACKEND=laion)."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import numpy as np

from engine.clap.base import Embedder
from engine.clap.runtime import resolve_device
from engine.clap.source import ensure_downloadable, file_sha256, hub_offline, probe_hub
from engine.config import Settings
from engine.errors import ModelUnavailableError

# laion_clap downloads these at import / construction time.
_LAION_HUB_DEPENDENCIES = ("roberta-base", "bert-base-uncased", "facebook/bart-base")


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
    ensure_downloadable(repo_id, revision=None, setting="TRAUM_LAION_CHECKPOINT")
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
    reason = probe_hub(missing[0])
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
