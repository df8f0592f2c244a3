"""Finding the audio in a user's folders: every allowed file, its size and mtime, nothing read.

Sample folders hold clutter (Ableton ``.asd`` files, ``.reapeaks``, readmes,
images, presets, ``.DS_Store``): anything that is not an allowed audio type,
and anything hidden, is skipped and counted, never reported as a failure.
Symbolic links to folders are followed once each, so a link loop cannot hang
a scan. Paths come back absolute and resolved, the form the library stores.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

PROGRESS_EVERY = 500  # files found between progress reports


@dataclass
class Scan:
    files: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> (bytes, mtime)
    skipped: int = 0  # clutter and hidden entries
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed


def scan(roots: list[Path], *, allowed_extensions, exclude: tuple[Path, ...] = (),
         progress: Callable[[int], None] | None = None) -> Scan:
    """Every allowed audio file at or under ``roots``; folders in ``exclude`` (the library's own
    data folder) are not entered. ``progress(found)`` is called now and then while walking."""
    result = Scan()
    allowed = {ext.lower() for ext in allowed_extensions}
    excluded = {os.path.realpath(p) for p in exclude}
    visited: set[tuple[int, int]] = set()

    def consider(path: str, name: str, stat: os.stat_result) -> None:
        if name.startswith(".") or os.path.splitext(name)[1].lower() not in allowed:
            result.skipped += 1
            return
        result.files[path] = (stat.st_size, stat.st_mtime)
        if progress is not None and len(result.files) % PROGRESS_EVERY == 0:
            progress(len(result.files))

    def walk(directory: str) -> None:
        try:
            key = os.stat(directory)
        except OSError:
            result.unreadable.append(directory)
            return
        if (key.st_dev, key.st_ino) in visited or directory in excluded:
            return
        visited.add((key.st_dev, key.st_ino))
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.warning("cannot list %s: %s", directory, exc)
            result.unreadable.append(directory)
            return
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if entry.is_dir():  # follows a link; `visited` stops loops
                    if entry.name.startswith("."):
                        result.skipped += 1
                    else:
                        walk(os.path.realpath(entry.path) if entry.is_symlink() else entry.path)
                elif entry.is_file():
                    path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                    consider(path, entry.name, entry.stat())
            except OSError:  # vanished or unreadable between listing and stat
                continue

    for root in roots:
        real = os.path.realpath(Path(root).expanduser())
        if os.path.isdir(real):
            walk(real)
        elif os.path.isfile(real):
            consider(real, os.path.basename(real), os.stat(real))
    if progress is not None:
        progress(len(result.files))
    return result


def within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or inside it (both absolute)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")
