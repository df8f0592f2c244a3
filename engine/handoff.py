"""Getting sounds out to a DAW: hits or tracks as CSV, as an M3U playlist, as a zip of the audio, or a
collection written to a folder.

CSV has a header row and one row per sound: ``rank``, ``score`` (empty for a plain list),
``filename``, ``path`` (absolute, the file a player opens), then ``id``, ``duration``, ``tempo``,
``key``, ``kind``, ``category``, ``segment_start``, ``segment_end``. M3U is the extended form
(``#EXTM3U``, ``#EXTINF:seconds,title``) with absolute paths, which DAWs and players read as-is.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

from engine.errors import EngineError, InputError
from engine.search import Hit
from engine.spool import safe_filename
from engine.store import Track

COLUMNS = ("rank", "score", "filename", "path", "id", "duration", "tempo", "key", "kind", "category",
           "segment_start", "segment_end")
PLAYLISTS = (".m3u", ".m3u8")


def rows(sounds: list[Hit] | list[Track]) -> list[dict]:
    """One dict per sound with COLUMNS: hits keep their rank and score, tracks are numbered in order."""
    out = []
    for number, sound in enumerate(sounds, 1):
        if isinstance(sound, Hit):
            out.append({"rank": sound.rank, "score": round(sound.score, 6), "filename": sound.filename,
                        "path": sound.path, "id": sound.id, "duration": sound.duration, "tempo": sound.tempo,
                        "key": sound.key, "kind": sound.kind, "category": sound.category,
                        "segment_start": sound.segment_start, "segment_end": sound.segment_end})
        else:
            out.append({"rank": number, "score": None, "filename": sound.filename, "path": playable(sound),
                        "id": sound.id, "duration": sound.duration, "tempo": sound.tempo, "key": sound.key,
                        "kind": sound.kind, "category": sound.category, "segment_start": None, "segment_end": None})
    return out


def playable(track: Track) -> str | None:
    """The absolute path a player opens: the library's copy first, else the first place it was found."""
    return track.locations[0] if track.locations else None


def to_csv(sounds: list[Hit] | list[Track]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(sounds):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def to_m3u(sounds: list[Hit] | list[Track]) -> str:
    """Extended M3U; sounds with no file to point at are left out."""
    lines = ["#EXTM3U"]
    for row in rows(sounds):
        if row["path"]:
            title = str(row["filename"]).replace("\n", " ").replace(",", " ")
            lines += [f"#EXTINF:{max(1, round(row['duration'] or 0))},{title}", row["path"]]
    return "\n".join(lines) + "\n"


def to_zip(sounds: list[Hit] | list[Track]) -> bytes:
    """The sounds' audio files in one zip, numbered in order ("01 kick.wav"); missing files are left out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # audio barely compresses
        for number, row in enumerate(rows(sounds), 1):
            if row["path"] and Path(row["path"]).is_file():
                archive.write(row["path"], numbered(number, len(sounds), row["filename"]))
    return buffer.getvalue()


def numbered(number: int, total: int, filename: str) -> str:
    return f"{number:0{len(str(total))}d} {safe_filename(filename)}"


def write_collection(tracks: list[Track], target: Path) -> dict:
    """A collection as ``target``: FILE.m3u / FILE.m3u8 or FILE.csv, or else a new or empty folder the
    audio files are copied into, numbered in order. Never overwrites a file."""
    target = Path(target).expanduser()
    suffix = target.suffix.lower()
    if suffix in (*PLAYLISTS, ".csv"):
        if target.exists():
            raise InputError(f"{target} exists already.", title="Export refused",
                             hint="Choose a new file name; nothing is overwritten.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_csv(tracks) if suffix == ".csv" else to_m3u(tracks), encoding="utf-8")
        return {"written": str(target.absolute()), "tracks": len(tracks)}
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target} is not an empty folder.", title="Export refused",
                         hint="Give a new or empty folder, or a file ending in .m3u or .csv.")
    target.mkdir(parents=True, exist_ok=True)
    copied, missing = [], []
    for number, track in enumerate(tracks, 1):
        source = playable(track)
        if source is None or not Path(source).is_file():
            missing.append(track.filename)
            continue
        destination = target / numbered(number, len(tracks), track.filename)
        try:
            shutil.copy2(source, destination)
        except OSError as exc:
            raise EngineError(f"could not copy {track.filename} to {target}: {exc.strerror}.",
                              title="Export failed", hint="Check the free space and the folder's permissions.")
        copied.append(str(destination))
    return {"written": str(target.absolute()), "tracks": len(copied), "missing": missing}
