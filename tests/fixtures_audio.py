"""Synthetic audio with known answers, written by the tests themselves."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.config import Settings
from engine.library import Library

__all__ = [
    "sine", "click_track", "white_noise", "write_audio", "encode_m4a",
    "audio_dir", "settings", "library", "signal_mix",
    "single_cycle", "noise_burst", "click", "write_riff",
]


def sine(freq: float, seconds: float, rate: int = 44_100, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_track(bpm: float, seconds: float, rate: int = 44_100, tone_hz: float = 1_000.0) -> np.ndarray:
    """Short windowed 1 kHz blips exactly every 60/bpm seconds."""
    out = np.zeros(int(seconds * rate), dtype=np.float32)
    length = int(0.005 * rate)
    blip = (np.hanning(length) * np.sin(2 * np.pi * tone_hz * np.arange(length) / rate)).astype(np.float32)
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(round(start * rate))
        out[i : i + length] += blip[: len(out) - i]
    return out * 0.8


def white_noise(seconds: float, rate: int = 44_100, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.2).astype(np.float32)


def single_cycle(frames: int, amplitude: float = 0.8) -> np.ndarray:
    """Exactly one period of a sine in ``frames`` samples: a single-cycle waveform."""
    return (amplitude * np.sin(2 * np.pi * np.arange(frames) / frames)).astype(np.float32)


def noise_burst(seconds: float, rate: int = 44_100, decay_per_s: float = 0.0, seed: int = 0) -> np.ndarray:
    """White noise (std 0.3) for ``seconds``, fading as exp(-decay_per_s * t): a shaker, or a hi-hat when decaying."""
    n = int(round(seconds * rate))
    envelope = np.exp(-decay_per_s * np.arange(n) / rate)
    return (np.random.default_rng(seed).standard_normal(n) * 0.3 * envelope).astype(np.float32)


def click(seconds: float = 0.002, rate: int = 44_100) -> np.ndarray:
    """A one-sample impulse with a small undershoot, then silence, ``seconds`` long in all."""
    out = np.zeros(int(round(seconds * rate)), dtype=np.float32)
    out[:2] = (0.9, -0.4)
    return out


def write_riff(path: Path, *, format_tag: int, data: bytes, channels: int = 1, rate: int = 44_100,
               bits: int = 16, extension: bytes = b"") -> Path:
    """A RIFF/WAVE file built by hand: a ``fmt `` chunk declaring ``format_tag`` (cbSize and
    ``extension`` after the 16 standard bytes), then a ``data`` chunk holding ``data`` as is."""
    block_align = channels * max(bits // 8, 1)
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits)
    fmt += struct.pack("<H", len(extension)) + extension
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + (b"\0" if len(fmt) % 2 else b"")
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def signal_mix(seconds: float = 12.0, rate: int = 44_100) -> np.ndarray:
    """A music-like test signal: a 120 BPM click over a quiet 220 Hz tone."""
    return click_track(120, seconds, rate) + sine(220, seconds, rate, amplitude=0.1)


def write_audio(path: Path, samples: np.ndarray, rate: int, **kwargs) -> Path:
    """wav/aiff/flac/mp3/ogg/opus through libsndfile, m4a (AAC) through PyAV.

    Keep ogg and opus files short (a few seconds): writing a long one in a
    single soundfile.write call can crash libsndfile. Opus needs 8, 12, 16,
    24 or 48 kHz.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".m4a":
        return encode_m4a(path, samples, rate)
    if path.suffix == ".mp3":
        kwargs.setdefault("format", "MP3")
    if path.suffix == ".aif":
        kwargs.setdefault("format", "AIFF")
    if path.suffix == ".opus":
        kwargs.setdefault("format", "OGG")
        kwargs.setdefault("subtype", "OPUS")
    sf.write(str(path), samples, rate, **kwargs)
    return path


def encode_m4a(path: Path, samples: np.ndarray, rate: int) -> Path:
    import av

    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    mono = mono.astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, len(mono), 1024):
            frame = av.AudioFrame.from_ndarray(mono[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    """A folder of generated files: known signals, formats, and broken inputs."""
    root = tmp_path_factory.mktemp("audio")
    rate = 44_100
    write_audio(root / "sine440.wav", sine(440, 5, rate), rate)
    write_audio(root / "click120.wav", click_track(120, 20, rate), rate)
    write_audio(root / "silence.wav", np.zeros(rate * 3, dtype=np.float32), rate)
    write_audio(root / "noise.wav", white_noise(5, rate), rate)
    stereo = np.stack([sine(330, 4, rate), sine(660, 4, rate)], axis=1)
    write_audio(root / "stereo44k.wav", stereo, rate)
    write_audio(root / "hires96k24.wav", sine(1_000, 3, 96_000), 96_000, subtype="PCM_24")
    mix = signal_mix(12.0, rate)
    for ext in ("wav", "flac", "mp3", "m4a"):
        write_audio(root / "formats" / f"mix.{ext}", mix, rate)
    bad = root / "bad"
    bad.mkdir()
    (bad / "random.wav").write_bytes(np.random.default_rng(1).bytes(50_000))
    (bad / "empty.wav").write_bytes(b"")
    full_mp3 = (root / "formats" / "mix.mp3").read_bytes()
    (bad / "truncated.mp3").write_bytes(full_mp3[:600])
    (bad / "notes.txt").write_text("not audio")
    return root


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", clap_model=str(tmp_path / "no-model"))


@pytest.fixture
def library(settings):
    lib = Library(settings)
    yield lib
    lib.close()
