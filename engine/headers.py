"""What a WAV, AIFF or Ogg header says its audio is encoded with.

Used only after libsndfile has refused a file: a RIFF/WAVE file carries a
16-bit format tag in its ``fmt `` chunk, an AIFF-C file a four-letter
compression type in its ``COMM`` chunk and an Ogg file its codec's magic in
the first packet, so we can tell "damaged file" apart from "a container we
know holding a codec libsndfile lacks" (Ogg Vorbis wrapped in a WAV header,
format tag 0x674F, turns up in real sample packs; libsndfile 1.2.2 fails on
FLAC in Ogg, python-soundfile issue #424), try FFmpeg on the latter, and
name the codec when that fails too. Reads at most a few hundred bytes of
headers, skipping over chunk bodies; never the audio itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# WAVE format tags (mmreg.h, RFC 2361). ``True`` where libsndfile decodes
# the codec: a failure on such a file means damage, not a missing decoder.
WAVE_FORMAT_TAGS: dict[int, tuple[str, bool]] = {
    0x0001: ("PCM", True),
    0x0002: ("Microsoft ADPCM", True),
    0x0003: ("IEEE float", True),
    0x0006: ("A-law", True),
    0x0007: ("mu-law", True),
    0x0011: ("IMA ADPCM", True),
    0x0020: ("Yamaha ADPCM", False),
    0x0031: ("GSM 6.10", True),
    0x0040: ("G.721 ADPCM", True),
    0x0045: ("G.726 ADPCM", False),
    0x0050: ("MPEG Layer 1/2", False),
    0x0055: ("MPEG Layer 3", True),
    0x00FF: ("AAC", False),
    0x0160: ("Windows Media Audio 1", False),
    0x0161: ("Windows Media Audio 2", False),
    0x0162: ("Windows Media Audio Pro", False),
    0x0163: ("Windows Media Audio Lossless", False),
    0x1610: ("AAC (ADTS)", False),
    0x2000: ("AC-3", False),
    0x2001: ("DTS", False),
    0x674F: ("Ogg Vorbis inside a WAV header", False),
    0x6750: ("Ogg Vorbis (mode 2) inside a WAV header", False),
    0x6751: ("Ogg Vorbis (mode 3) inside a WAV header", False),
    0x676F: ("Ogg Vorbis (mode 1+) inside a WAV header", False),
    0x6770: ("Ogg Vorbis (mode 2+) inside a WAV header", False),
    0x6771: ("Ogg Vorbis (mode 3+) inside a WAV header", False),
    0xF1AC: ("FLAC inside a WAV header", False),
}
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# AIFF-C compression types; ``True`` where libsndfile decodes them.
AIFC_COMPRESSION: dict[bytes, tuple[str, bool]] = {
    b"NONE": ("big-endian PCM", True),
    b"twos": ("big-endian PCM", True),
    b"sowt": ("little-endian PCM", True),
    b"raw ": ("unsigned 8-bit PCM", True),
    b"in24": ("24-bit PCM", True),
    b"in32": ("32-bit PCM", True),
    b"fl32": ("32-bit float", True),
    b"FL32": ("32-bit float", True),
    b"fl64": ("64-bit float", True),
    b"FL64": ("64-bit float", True),
    b"ulaw": ("mu-law", True),
    b"ULAW": ("mu-law", True),
    b"alaw": ("A-law", True),
    b"ALAW": ("A-law", True),
    b"ima4": ("IMA 4:1 ADPCM", True),
    b"MAC3": ("MACE 3:1", False),
    b"MAC6": ("MACE 6:1", False),
    b"QDMC": ("QDesign Music", False),
    b"QDM2": ("QDesign Music 2", False),
    b"Qclp": ("Qualcomm PureVoice", False),
}

# The first packet of an Ogg stream names its codec.
OGG_CODECS: dict[bytes, tuple[str, bool]] = {
    b"\x01vorbis": ("Vorbis", True),
    b"OpusHead": ("Opus", True),
    b"\x7fFLAC": ("FLAC", False),  # libsndfile 1.2.2 refuses FLAC in Ogg ("unknown error in flac decoder")
    b"Speex   ": ("Speex", False),
}

_MAX_CHUNKS = 64  # a header walk gives up after this many chunks without the one it wants


@dataclass(frozen=True)
class DeclaredCodec:
    """The codec a file's header declares."""

    container: str  # "wav", "aiff" or "ogg"
    label: str  # "format tag 0x674F", "compression type 'QDM2'", "codec 'FLAC'" (Ogg)
    name: str | None  # "Ogg Vorbis inside a WAV header"; None when not in our tables
    libsndfile_reads: bool  # whether libsndfile has a decoder for it

    def describe(self) -> str:
        """``label (name)``, for messages: "format tag 0x674F (Ogg Vorbis inside a WAV header)"."""
        return f"{self.label} ({self.name or 'a codec this engine does not know'})"


def declared_codec(path: Path) -> DeclaredCodec | None:
    """The codec declared by a RIFF/WAVE (also RIFX, RF64, BW64), AIFF/AIFF-C or Ogg header.

    None for any other file, and for a header too damaged to say.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                return _wave_codec(handle, big_endian=head[:4] == b"RIFX")
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_codec(handle, compressed=head[8:12] == b"AIFC")
            if head[:4] == b"OggS":
                return _ogg_codec(head + handle.read(300))
    except OSError:
        return None
    return None


def _chunk(handle, chunk_id: bytes, *, big_endian: bool) -> bytes | None:
    """The first 64 bytes of the next chunk called ``chunk_id``, skipping others (bodies pad to even)."""
    order = ">" if big_endian else "<"
    for _ in range(_MAX_CHUNKS):
        header = handle.read(8)
        if len(header) < 8:
            return None
        size = struct.unpack(order + "I", header[4:])[0]
        if header[:4] == chunk_id:
            return handle.read(min(size, 64))
        handle.seek(size + (size & 1), 1)
    return None


def _wave_codec(handle, *, big_endian: bool) -> DeclaredCodec | None:
    body = _chunk(handle, b"fmt ", big_endian=big_endian)
    if body is None or len(body) < 2:
        return None
    order = ">" if big_endian else "<"
    tag = struct.unpack(order + "H", body[:2])[0]
    label = f"format tag 0x{tag:04X}"
    # WAVE_FORMAT_EXTENSIBLE: the real codec is the SubFormat GUID, whose
    # first two bytes are the classic format tag (KSDATAFORMAT_SUBTYPE_*).
    if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack(order + "H", body[24:26])[0]
        label = f"format tag 0xFFFE with sub-format 0x{tag:04X}"
    name, readable = WAVE_FORMAT_TAGS.get(tag, (None, False))
    return DeclaredCodec("wav", label, name, readable)


def _aiff_codec(handle, *, compressed: bool) -> DeclaredCodec | None:
    body = _chunk(handle, b"COMM", big_endian=True)
    if body is None:
        return None
    # COMM: channels (2), frames (4), bits (2), rate (10, extended float), then in AIFF-C the compression type (4).
    compression = body[18:22] if compressed else b"NONE"
    if len(compression) < 4:
        return None
    name, readable = AIFC_COMPRESSION.get(compression, (None, False))
    shown = compression.decode("ascii", "backslashreplace")
    return DeclaredCodec("aiff", f"compression type '{shown}'", name, readable)


def _ogg_codec(page: bytes) -> DeclaredCodec | None:
    """The codec of an Ogg file's first stream, from its first page's first packet."""
    # Page header: "OggS", version, flags, granule (8), serial (4), sequence (4), CRC (4), segment count, lacing.
    if len(page) < 27:
        return None
    packet = page[27 + page[26] :]
    name, readable = next(((n, r) for magic, (n, r) in OGG_CODECS.items() if packet.startswith(magic)), (None, False))
    # The magic as text for the message: "codec 'FLAC'", "codec 'Speex'".
    shown = "".join(chr(b) for b in packet[:8] if 32 < b < 127)
    return DeclaredCodec("ogg", f"codec '{shown}'", name, readable)
