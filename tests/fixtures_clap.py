"""A tiny CLAP model built offline (no downloads).

It has the real ClapModel architecture at toy size (about 0.1 M parameters), a
byte-level BPE tokenizer trained on a few prompts, the real ClapFeatureExtractor,
and fixed seeds, so every build is byte-identical. Two tricks make a random
model meaningful for ranking tests: HTSAT's input BatchNorm starts as identity
while log-mels sit around -60 dB, which makes every input embed in nearly the
same direction; setting its running statistics to mean -60 / var 625 spreads
different sounds apart (cosine ~0.5) while the same window still embeds
identically. Likewise the text encoder's attention weights are scaled up so
different prompts do not all embed at cosine ~0.997.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

__all__ = [
    "build_tiny_clap",
    "tiny_clap_dir",
    "tiny_clap_settings",
    "fresh_embedders",
    "TINY_CLAP_DIM",
]

TINY_CLAP_DIM = 16
TEXT_ATTENTION_GAIN = 4.0

_CORPUS = [
    "the sound of a cat meowing",
    "a dog barking loudly in the distance",
    "music with heavy drums and deep bass",
    "a calm piano melody",
    "rain falling on a window",
    "an electric guitar solo",
    "people talking in a busy cafe",
    "birds singing in the morning",
    "a techno track at 128 bpm",
    "orchestral strings and a choir",
    "a sine tone, white noise and clicks",
]


def build_tiny_clap(directory: Path, *, seed: int = 0, fusion: bool = False,
                    text_attention_gain: float = TEXT_ATTENTION_GAIN) -> Path:
    """Build and save a tiny ClapModel + ClapProcessor into ``directory``.

    Deterministic for a given seed; a different seed gives different weights
    (useful to check that model ids differ). ``fusion=True`` builds a
    feature-fusion model (like laion/clap-htsat-fused). ``text_attention_gain=1``
    leaves the text tower as initialised: collapsed, like a broken checkpoint.
    Returns the directory.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizer,
    )

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    # Byte-level BPE with RoBERTa's special ids: <s>=0, <pad>=1, </s>=2.
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _CORPUS * 4,
        vocab_size=320,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    model_json = json.loads(bpe._tokenizer.to_str())["model"]
    tokenizer = RobertaTokenizer(
        vocab=model_json["vocab"],
        merges=[tuple(m) if not isinstance(m, str) else tuple(m.split(" ")) for m in model_json["merges"]],
        model_max_length=77,
    )
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>")] == [0, 1, 2]

    text_config = ClapTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,
    )
    # HTSAT needs hidden_size == patch_embeds_hidden_size * 2 ** (len(depths) - 1).
    audio_config = ClapAudioConfig(
        patch_embeds_hidden_size=8,
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 2, 2],
        hidden_size=64,
        enable_fusion=fusion,
        fusion_type="aff_2d" if fusion else None,
    )
    config = ClapConfig(
        text_config=text_config.to_dict(),
        audio_config=audio_config.to_dict(),
        projection_dim=TINY_CLAP_DIM,  # ClapConfig pushes this into both sub-configs
    )

    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    with torch.no_grad():
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.fill_(-60.0)
        bn.running_var.fill_(625.0)
        # The text side has the same problem: at init the attention path is weak
        # next to the residual, so the <s> token the pooler reads barely sees the
        # prompt (every pair of prompts ~0.997). Four times stronger attention
        # weights spread different prompts to ~0.5 while related ones stay close.
        for layer in model.text_model.encoder.layer:
            attention = layer.attention
            for linear in (attention.self.query, attention.self.key, attention.self.value, attention.output.dense):
                linear.weight.mul_(text_attention_gain)

    processor = ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer)
    model.save_pretrained(directory)  # safetensors
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory) -> Path:
    return build_tiny_clap(tmp_path_factory.mktemp("tiny_clap"))


@pytest.fixture
def tiny_clap_settings(tiny_clap_dir, tmp_path):
    from engine.config import Settings

    return Settings(data_dir=tmp_path / "data", clap_model=str(tiny_clap_dir), clap_device="cpu")


@pytest.fixture
def fresh_embedders():
    """Forget any loaded/failed embedder before and after the test."""
    from engine.clap import reset_embedders

    reset_embedders()
    yield
    reset_embedders()
