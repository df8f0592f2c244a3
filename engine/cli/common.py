"""What every command shares: exit codes, opening the library, JSON and text output, progress bars."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from engine.errors import EngineError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def open_library(args, *, through_server: bool = True, busy_hint: str | None = None):
    """The library in --data-dir (or TRAUM_DATA_DIR), opened for this command.

    While the dashboard's server holds it, a command that can (``through_server``) works on it
    through the server's API instead (engine.remote: the same methods, results and errors); one that
    cannot says so, with ``busy_hint`` saying what to do instead.
    """
    from engine.config import load_settings
    from engine.errors import LibraryLockedError
    from engine.library import Library
    from engine.remote import record

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    server = record.read(settings.data_dir)
    if server is not None and through_server:
        from engine.remote.client import RemoteLibrary, ServerGone

        try:
            return RemoteLibrary(server, settings)
        except ServerGone:  # it stopped answering: open the library here if it let go of it
            pass
    try:
        return Library(settings)
    except LibraryLockedError:
        if server is None or through_server:
            raise
        command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        raise LibraryLockedError(
            f"the dashboard's server ({server.url.removesuffix('/api/v1')}) holds this library, and "
            f"'{command}' cannot run through it.",
            hint=busy_hint or "Stop the dashboard (Ctrl-C where it runs), then run the command again.") from None


def public(track) -> dict:
    return {key: jsonable(value) for key, value in track.to_dict().items()}


def jsonable(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def print_json(document) -> None:
    json.dump(document, sys.stdout, default=jsonable, indent=2)
    sys.stdout.write("\n")


def emit(args, document, text: str) -> None:
    """The command's result: ``document`` as JSON with --json, else ``text`` for a person."""
    if getattr(args, "json", False):
        print_json(document)
    else:
        print(text)


def emit_error(args, exc: EngineError) -> None:
    if getattr(args, "json", False):
        print_json({"error": exc.to_dict()})
    print(f"Error: {exc}", file=sys.stderr)


def report_track_results(args, results, *, done: str) -> int:
    """Print a pass over stored tracks (reembed, reanalyse): ``done`` ("embedded") and failed, with
    each failure's reason; exit status 1 when any failed."""
    finished = [{"id": r.track_id, "filename": r.source} for r in results if r.status == "added"]
    failed = [{"id": r.track_id, "filename": r.source, "error": r.error} for r in results if r.status == "failed"]
    if args.json:
        print_json({done: finished, "failed": failed})
    else:
        for item in failed:
            print(f"FAILED  {item['error']}", file=sys.stderr)
        print(f"{len(finished)} {done}, {len(failed)} failed." if results else "Every track is up to date.")
    return EXIT_FAILED if failed else EXIT_OK


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class FileBar:
    """tqdm progress on stderr for commands that work through files (off with --json or no terminal).

    ``on_file`` takes ingest progress events; ``on_sync`` a sync's: files found
    while scanning, then files analysed of the total, with rate and time left.
    """

    def __init__(self, args, unit_label: str):
        self._enabled = not getattr(args, "json", False) and sys.stderr.isatty()
        self._label = unit_label
        self._bar = None
        self._phase = None

    def __enter__(self) -> FileBar:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()

    def _open(self, phase: str, total: int | None):
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        self._phase = phase
        self._bar = tqdm(total=total, desc=phase, unit="file", file=sys.stderr, disable=not self._enabled)
        return self._bar

    def on_file(self, event) -> None:
        if event.result is None:
            return
        bar = self._bar if self._bar is not None else self._open(self._label, None)  # tqdm has no truth value
        bar.update(1)
        bar.set_postfix_str(Path(event.source).name[:40])

    def on_sync(self, event) -> None:
        if event.phase == "scan":
            if self._phase != "found":
                self._open("found", None)
            self._bar.update(event.found - self._bar.n)
        elif event.phase == "analyse":
            if self._phase != self._label:
                self._open(self._label, event.total)
            self._bar.update(event.done - self._bar.n)
