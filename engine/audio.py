"""Reading audio files: validate, hash, decode once, resample.

Each file is decoded exactly once into mono float32 at its own sample rate;
the two rates the engine needs (48 kHz for CLAP, 22,050 Hz for features) are
resampled from that one decode with soxr. wav, flac and mp3 are read by
libsndfile (soundfile); m4a/AAC and other MP4-family files by PyAV, whose
wheels bundle FFmpeg, so no system ffmpeg is needed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine.errors import DecodeError, InputError, first_line

CLAP_RATE = 48_000
FEATURE_RATE = 22_050
MIN_DURATION_S = 0.1
_BLOCK_FRAMES = 1 << 18
_HASH_CHUNK = 1 << 20
# Containers PyAV reads for us; libsndfile handles the rest.
_PYAV_EXTENSIONS = {".m4a", ".mp4", ".aac", ".alac"}


@dataclass
class DecodedAudio:
    """One decode of a file: mono float32 plus what the original looked like."""

    samples: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int  # the file's own rate, Hz
    channels: int  # the file's own channel count
    duration_s: float  # the whole file, seconds (even when truncated)
    container: str  # "wav", "flac", "mp3", "m4a", ...
    codec: str  # "pcm_16", "mpeg_layer_iii", "aac", ...
    truncated: bool  # only the first ``max_duration`` seconds were decoded
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def analysed_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def at_rate(self, rate: int) -> np.ndarray:
        """The decoded samples resampled to ``rate`` Hz (computed once, cached)."""
        if rate not in self._cache:
            if rate == self.sample_rate:
                self._cache[rate] = self.samples
            else:
                self._cache[rate] = soxr.resample(self.samples, self.sample_rate, rate).astype(
                    np.float32, copy=False
                )
        return self._cache[rate]


def check_file(path: Path, *, allowed_extensions, max_size_bytes: int, display_name: str | None = None) -> int:
    """Validate a file before reading it: type by extension, existence, size.

    Returns the size in bytes. ``display_name`` is what messages call the file
    (an upload's original name), defaulting to the path.
    """
    name = display_name or str(path)
    ext = Path(display_name or path.name).suffix.lower()
    if ext not in allowed_extensions:
        allowed = ", ".join(sorted(allowed_extensions))
        raise InputError(
            f"{name}: files of type '{ext or '(none)'}' are not accepted.",
            hint=f"Allowed types: {allowed} (setting TRAUM_ALLOWED_EXTENSIONS).",
            title="Unsupported file type",
        )
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file.", title="File not found") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror}).", title="Unreadable file") from None
    if not path.is_file():
        raise InputError(f"{name}: is not a regular file.", title="Unreadable file")
    if stat.st_size == 0:
        raise InputError(f"{name}: the file is empty (0 bytes).", hint="Re-export or re-download it.", title="Empty file")
    check_size(stat.st_size, max_size_bytes=max_size_bytes, name=name)
    return stat.st_size


def check_size(size: int, *, max_size_bytes: int, name: str) -> None:
    """Refuse ``size`` bytes when over the limit, with the numbers in the message."""
    if size > max_size_bytes:
        raise InputError(
            f"{name}: {size / 1048576:.1f} MB is over the {max_size_bytes / 1048576:.0f} MB limit.",
            hint="Trim or compress the file, or raise TRAUM_MAX_FILE_SIZE_MB.",
            title="File too large",
        )


def hash_file(path: Path) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks (hex digest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def decode(path: Path, *, max_duration_s: float, display_name: str | None = None) -> DecodedAudio:
    """Decode ``path`` once into mono float32, at most ``max_duration_s`` seconds.

    Raises DecodeError when the content is not audio we can read, and
    InputError for audio that is empty, too short or holds NaN/inf samples.
    """
    name = display_name or str(path)
    ext = Path(display_name or path.name).suffix.lower()
    try:
        if ext in _PYAV_EXTENSIONS or _looks_like_mp4(path):
            decoded = _decode_pyav(path, max_duration_s, name)
        else:
            decoded = _decode_soundfile(path, max_duration_s)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # codec libraries raise many unrelated types
        raise DecodeError(
            f"{name}: the content could not be read as audio ({first_line(exc, 160)}).",
            hint="The file may be damaged, truncated or not audio at all; re-export it as wav, flac, mp3 or m4a.",
        ) from None
    _check_samples(decoded, name)
    return decoded


def _decode_soundfile(path: Path, max_duration_s: float) -> DecodedAudio:
    with sf.SoundFile(str(path)) as handle:
        rate, channels = int(handle.samplerate), int(handle.channels)
        total = int(handle.frames)
        wanted = min(total, int(max_duration_s * rate))
        mono = np.empty(wanted, dtype=np.float32)
        # A matrix-vector product downmixes far faster than mean(axis=1) on (n, channels).
        downmix = np.full(channels, 1.0 / channels, dtype=np.float32)
        filled = 0
        # Read in blocks and downmix as we go, so a long stereo file never
        # exists in memory as a full multi-channel float array.
        while filled < wanted:
            block = handle.read(min(_BLOCK_FRAMES, wanted - filled), dtype="float32", always_2d=True)
            if len(block) == 0:
                break  # the header promised more frames than the file holds
            mono[filled : filled + len(block)] = block @ downmix if channels > 1 else block[:, 0]
            filled += len(block)
        container = handle.format.lower()
        codec = handle.subtype.lower()
    mono = mono[:filled]
    truncated = total > wanted and filled == wanted
    duration = total / rate if filled == wanted else filled / rate
    return DecodedAudio(mono, rate, channels, duration, container, codec, truncated)


def _decode_pyav(path: Path, max_duration_s: float, name: str) -> DecodedAudio:
    import av  # imported lazily: only m4a-family files need FFmpeg

    with av.open(str(path), mode="r") as container:
        if not container.streams.audio:
            raise DecodeError(f"{name}: the container has no audio stream.")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        rate = int(ctx.sample_rate or stream.rate)
        channels = int(ctx.layout.nb_channels) if ctx.layout else int(ctx.channels)
        wanted = int(max_duration_s * rate)
        # Convert every frame to planar float32 at the file's own rate and layout.
        resampler = av.AudioResampler(format="fltp", layout=ctx.layout, rate=rate)
        parts, filled, stopped_early = [], 0, False

        def take(frames) -> int:
            for frame in frames:
                planar = frame.to_ndarray()
                parts.append(np.full(planar.shape[0], 1.0 / planar.shape[0], dtype=np.float32) @ planar)
            return sum(part.shape[0] for part in parts[-len(frames):]) if frames else 0

        for frame in container.decode(stream):
            filled += take(resampler.resample(frame))
            if filled >= wanted:
                stopped_early = True
                break
        else:
            filled += take(resampler.resample(None))
        samples = np.concatenate(parts)[:wanted] if parts else np.empty(0, dtype=np.float32)
        decoded_s = len(samples) / rate
        duration = container.duration / 1_000_000 if container.duration else decoded_s
        fmt, codec = container.format.name, ctx.name
    container_name = "m4a" if "mp4" in fmt or "m4a" in fmt else fmt.split(",")[0]
    truncated = stopped_early and duration > max_duration_s
    if not truncated:
        # The container's own duration can be off by a frame; trust the decode.
        duration = decoded_s
    return DecodedAudio(samples, rate, channels, duration, container_name, codec, truncated)


def _check_samples(decoded: DecodedAudio, name: str) -> None:
    if len(decoded.samples) == 0:
        raise InputError(f"{name}: the file holds no audio samples.", hint="Re-export it.", title="Empty audio")
    if decoded.analysed_s < MIN_DURATION_S:
        raise InputError(
            f"{name}: {decoded.analysed_s * 1000:.1f} ms of audio is too short to analyse "
            f"(at least {MIN_DURATION_S * 1000:.0f} ms).",
            title="Audio too short",
        )
    if not np.isfinite(decoded.samples).all():
        raise InputError(
            f"{name}: the audio contains NaN or infinite sample values.",
            hint="The file is corrupt or was written by a faulty exporter; re-export it.",
            title="Invalid samples",
        )


def _looks_like_mp4(path: Path) -> bool:
    """True when the file starts like an ISO-BMFF (MP4/M4A) container."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] == b"ftyp"
