"""Files the library receives as bytes or streams: saved under ``data/tmp`` by a generated name.

An uploaded file's name is shown, never used as a path: only its sanitised
extension survives, because decoders choose by it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from engine.errors import EngineError


def spool(data, filename: str, tmp_dir: Path) -> Path:
    """Write bytes or a binary file object to a new file under ``tmp_dir``, named by a uuid.

    Streams in 1 MiB chunks, so a file object is never held whole.
    """
    ext = "".join(c for c in Path(filename).suffix.lower() if c.isalnum() or c == ".")[:10]
    target = tmp_dir / f"{uuid.uuid4().hex}{ext}"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                shutil.copyfileobj(data, handle, length=1 << 20)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise EngineError(f"{filename}: could not be saved for processing ({exc.strerror}).",
                          hint="Check free disk space in the data folder.", title="Upload not saved") from None
    return target


def payload_size(data) -> int:
    """The size of bytes or of a seekable binary file object, without reading it."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    data.seek(0, os.SEEK_END)
    size = data.tell()
    data.seek(0)
    return size


def safe_filename(name: str) -> str:
    """The base name of an uploaded file, for display only (never used as a path)."""
    base = (name or "").replace("\\", "/").split("/")[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())
    if base in ("", ".", ".."):
        base = "upload"
    if len(base) > 255:  # shorten the stem, never the extension that decides the decoder
        suffix = Path(base).suffix[:16]
        base = base[: 255 - len(suffix)] + suffix
    return base
