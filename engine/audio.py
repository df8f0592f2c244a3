"""Reading audio files: validate, hash, decode once, resample.

Each file is decoded exactly once into mono float32 at its own sample rate;
the two rates the engine needs (48 kHz for CLAP, 22,050 Hz for features) are
resampled from that one decode with soxr. wav, aiff, flac, mp3, Ogg Vorbis
and Opus are read by libsndfile (soundfile); m4a/AAC and other MP4-family
files by PyAV, whose wheels bundle FFmpeg, so no system ffmpeg is needed.
FFmpeg is also tried on a WAV, AIFF-C or Ogg file whose header declares a
codec libsndfile lacks (FLAC in Ogg, MPEG Layer 2 in WAV, ...); when
neither reads it, the error names the codec.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine import headers
from engine.errors import DecodeError, InputError, TooLargeError, UnsupportedTypeError, first_line

CLAP_RATE = 48_000
FEATURE_RATE = 22_050
# The fewest frames (at the file's own rate) a file must decode to. Real
# samples go down to single-cycle waveforms of 64 frames (1.5 ms at 44.1 kHz)
# and 2 ms clicks, so the floor is a count of frames, not a duration; below
# 32 frames a file is a stub rather than a sound.
MIN_FRAMES = 32
_BLOCK_FRAMES = 1 << 18
_HASH_CHUNK = 1 << 20
# Containers PyAV reads for us; libsndfile handles the rest.
_PYAV_EXTENSIONS = {".m4a", ".mp4", ".aac", ".alac"}
# libsndfile's major formats under the names users give the files.
_CONTAINERS = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "w64", "AIFF": "aiff", "FLAC": "flac",
               "MP3": "mp3", "MPEG": "mp3", "OGG": "ogg", "CAF": "caf"}
# FFmpeg decoder names that have a libsndfile name already in use.
_FFMPEG_CODECS = {"mp3": "mpeg_layer_iii", "mp3float": "mpeg_layer_iii", "mp2": "mpeg_layer_ii",
                  "mp2float": "mpeg_layer_ii"}


@dataclass
class DecodedAudio:
    """One decode of a file: mono float32 plus what the original looked like."""

    samples: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int  # the file's own rate, Hz
    channels: int  # the file's own channel count
    duration_s: float  # the whole file, seconds (even when truncated)
    container: str  # "wav", "aiff", "flac", "mp3", "m4a", "ogg", "opus", ... (see container_and_codec)
    codec: str  # "pcm_16", "float", "vorbis", "opus", "mpeg_layer_iii", "aac", ...
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
    check_type(display_name or path.name, allowed_extensions=allowed_extensions, name=name)
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


def check_type(filename: str, *, allowed_extensions, name: str | None = None) -> None:
    """Refuse a file whose extension is not allowed (checked before a byte is read)."""
    ext = Path(filename).suffix.lower()
    if ext not in allowed_extensions:
        allowed = ", ".join(sorted(allowed_extensions))
        raise UnsupportedTypeError(
            f"{name or filename}: files of type '{ext or '(none)'}' are not accepted.",
            hint=f"Allowed types: {allowed} (setting TRAUM_ALLOWED_EXTENSIONS).",
        )


def check_size(size: int, *, max_size_bytes: int, name: str) -> None:
    """Refuse ``size`` bytes when over the limit, with the numbers in the message."""
    if size > max_size_bytes:
        raise TooLargeError(
            f"{name}: {size / 1048576:.1f} MB is over the {max_size_bytes / 1048576:.0f} MB limit.",
            hint="Trim or compress the file, or raise TRAUM_MAX_FILE_SIZE_MB.",
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

    Raises DecodeError when the content is not audio we can read (titled
    "Unsupported codec" when a WAV, AIFF-C or Ogg header declares a codec
    that no decoder here has), and InputError for audio that is empty, shorter than
    MIN_FRAMES frames or holds NaN/inf samples.
    """
    name = display_name or str(path)
    ext = Path(display_name or path.name).suffix.lower()
    use_pyav = ext in _PYAV_EXTENSIONS or _looks_like_mp4(path)
    try:
        decoded = _decode_pyav(path, max_duration_s, name) if use_pyav else _decode_soundfile(path, max_duration_s)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # codec libraries raise many unrelated types
        declared = None if use_pyav else headers.declared_codec(path)
        if declared is None or declared.libsndfile_reads:
            # Not a WAV/AIFF/Ogg, or one whose codec libsndfile has: the file itself is at fault.
            raise DecodeError(
                # The library's spooled copy of an upload keeps its name out of the codec's words.
                f"{name}: the content could not be read as audio "
                f"({first_line(exc, 160).replace(str(path), name)}).",
                hint="The file may be damaged, truncated or not audio at all; "
                "re-export it as wav, aiff, flac, mp3, ogg or m4a.",
            ) from None
        decoded = _decode_other_codec(path, max_duration_s, name, declared)
    _check_samples(decoded, name)
    return decoded


def _decode_other_codec(path: Path, max_duration_s: float, name: str,
                        declared: headers.DeclaredCodec) -> DecodedAudio:
    """FFmpeg's try at a file whose declared codec libsndfile lacks; DecodeError naming the codec if it fails too."""
    try:
        return _decode_pyav(path, max_duration_s, name)
    except MemoryError:
        raise
    except Exception:  # FFmpeg has no decoder either, or the stream is not what the header says
        raise DecodeError(
            f"{name}: the {declared.container} file's audio is encoded with {declared.describe()}, "
            "which neither libsndfile nor FFmpeg can decode.",
            hint="Convert it to wav or flac with the software that made it, or any tool that reads this codec "
            "(FFmpeg cannot), and add the converted file.",
            title="Unsupported codec",
        ) from None


def container_and_codec(*, major_format: str, subtype: str) -> tuple[str, str]:
    """(container, codec) from libsndfile's ``format`` and ``subtype``, as users name them.

    The container is the file type a user would give the file: WAV, WAVEX
    (WAVE_FORMAT_EXTENSIBLE) and RF64 are all "wav", W64 is "w64", AIFF and
    AIFF-C are "aiff", MP3 is "mp3"; Ogg is "opus" when it holds Opus and
    "ogg" otherwise (Vorbis). The codec is the sample encoding, lower case:
    "pcm_16", "pcm_24", "float", "ulaw", "vorbis", "opus", "mpeg_layer_iii".
    """
    major, codec = major_format.upper(), subtype.lower()
    if major == "OGG" and codec == "opus":
        return "opus", codec
    return _CONTAINERS.get(major, major.lower()), codec


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
        container, codec = container_and_codec(major_format=handle.format, subtype=handle.subtype)
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
        fmt, codec = container.format.name, _FFMPEG_CODECS.get(ctx.name, ctx.name)
    container_name = "m4a" if "mp4" in fmt or "m4a" in fmt else fmt.split(",")[0]
    truncated = stopped_early and duration > max_duration_s
    if not truncated:
        # The container's own duration can be off by a frame; trust the decode.
        duration = decoded_s
    return DecodedAudio(samples, rate, channels, duration, container_name, codec, truncated)


def _check_samples(decoded: DecodedAudio, name: str) -> None:
    if len(decoded.samples) == 0:
        raise InputError(f"{name}: the file holds no audio samples.", hint="Re-export it.", title="Empty audio")
    if len(decoded.samples) < MIN_FRAMES:
        frames = len(decoded.samples)
        raise InputError(
            f"{name}: {frames} frame{'s' if frames != 1 else ''} of audio ({decoded.analysed_s * 1000:.2f} ms at "
            f"{decoded.sample_rate:,} Hz) is too short to analyse; the minimum is {MIN_FRAMES} frames.",
            hint="A file this short is usually a failed or cut-off export; re-export it.",
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
