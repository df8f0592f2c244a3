"""The default backend: transformers' ``ClapModel`` (safetensors only)."""

from __future__ import annotations

import logging
import time

import numpy as np

from engine.clap.base import Embedder, pooled
from engine.clap.melspec import LogMel
from engine.clap.runtime import resolve_device, resolve_precision
from engine.clap.source import (
    MODEL_HINT,
    check_model_dir,
    download_hub_model,
    ensure_downloadable,
    transformers_content_hash,
    transformers_source,
)
from engine.config import Settings
from engine.errors import ModelUnavailableError
from engine.windows import CLAP_SAMPLE_RATE, WINDOW_SAMPLES

log = logging.getLogger(__name__)


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
        directory, name = transformers_source(settings)
        if directory is None:
            ensure_downloadable(name, revision=settings.clap_revision, setting="TRAUM_CLAP_MODEL")
        import torch

        self.device = resolve_device(settings.clap_device)  # before a download, not after
        self.precision = resolve_precision(settings.clap_precision, self.device)
        self._dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        if directory is None:
            directory = download_hub_model(name, revision=settings.clap_revision)
        check_model_dir(directory, what=f"CLAP model directory {str(directory)!r} (TRAUM_CLAP_MODEL)")
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
                hint=MODEL_HINT,
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
        # On a GPU the extractor's numpy STFT (15-40 ms a window on one core) would cost 50-100 times
        # the model: there the same features are computed on the device (engine.clap.melspec).
        self._log_mel = None if self.device == "cpu" else LogMel(self._features, fusion=self._fusion,
                                                                 device=self.device)
        self.checks_finite_itself = self._log_mel is not None
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

        if self._log_mel is not None:
            return self._log_mel(batch)
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
        return pooled(self._model.get_audio_features(input_features=x, **kwargs))

    def _embed_text_batch(self, texts: list[str]):
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._text_max_length, return_tensors="pt"
        )
        out = self._model.get_text_features(
            input_ids=enc["input_ids"].to(self.device),
            attention_mask=enc["attention_mask"].to(self.device),
        )
        return pooled(out)
