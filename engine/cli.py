"""Command line: ``python -m engine COMMAND``.

Every command takes ``--json`` (exactly one JSON document on stdout) and
``--debug`` (show tracebacks). Exit status: 0 success, 1 when something
failed (a file, a lookup), 2 for usage or configuration errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from engine.errors import ConfigError, EngineError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit status is 2 as well; keep its text short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    common.add_argument("--data-dir", type=Path, help="library folder (default: TRAUM_DATA_DIR or ./data)")

    parser = _Parser(prog="python -m engine", description="Traum-Engine: index and search an audio library.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ingest = commands.add_parser("ingest", parents=[common], help="import audio files and folders",
                                 description="Import audio files and folders (recursively) into the library.")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--copy", action="store_true",
                        help="keep a copy under DATA_DIR/audio instead of referencing the files where they are")
    ingest.set_defaults(run=cmd_ingest)

    stats = commands.add_parser("stats", parents=[common], help="library totals")
    stats.set_defaults(run=cmd_stats)

    listing = commands.add_parser("list", parents=[common], help="list tracks, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", parents=[common], help="everything stored about one track")
    show.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
    show.set_defaults(run=cmd_show)

    delete = commands.add_parser("delete", parents=[common], help="remove a track (never your original file)")
    delete.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
    delete.set_defaults(run=cmd_delete)

    search = commands.add_parser("search", parents=[common], help="search by prompt, example audio or track",
                                 description="Rank the library by CLAP similarity to a prompt, a clip or a track.")
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("prompt", nargs="?", help='a text prompt, e.g. "punchy 808 kick"')
    query.add_argument("--audio", type=Path, metavar="FILE", help="an example audio file")
    query.add_argument("--like", metavar="ID", help="a track id: find more like it")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--min-score", type=float)
    search.add_argument("--min-duration", type=float, metavar="S")
    search.add_argument("--max-duration", type=float, metavar="S")
    search.add_argument("--min-tempo", type=float, metavar="BPM")
    search.add_argument("--max-tempo", type=float, metavar="BPM")
    search.add_argument("--format", action="append", default=[], help="only this format (repeatable)")
    search.add_argument("--segments", action="store_true", help="rank by the best single 10 s segment")
    search.set_defaults(run=cmd_search)

    reembed = commands.add_parser("reembed", parents=[common], help="compute missing or outdated embeddings")
    reembed.add_argument("--retry", action="store_true", help="try loading the model again after a failure")
    reembed.set_defaults(run=cmd_reembed)

    model = commands.add_parser("model", parents=[common], help="show the CLAP model in use")
    model.add_argument("--load", action="store_true", help="load the model to check that it works")
    model.set_defaults(run=cmd_model)

    export = commands.add_parser("export", parents=[common], help="back up the library to a folder (Parquet + audio)")
    export.add_argument("target", type=Path, metavar="DIR")
    export.set_defaults(run=cmd_export)

    restore = commands.add_parser("import", parents=[common], help="restore an export into an empty library")
    restore.add_argument("source", type=Path, metavar="DIR")
    restore.set_defaults(run=cmd_import)

    hasher = commands.add_parser("hash-password", parents=[common],
                                 help="make a TRAUM_AUTH_PASSWORD_HASH for the dashboard's password mode")
    hasher.set_defaults(run=cmd_hash_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.run(args)
    except EngineError as exc:
        if args.debug:
            raise
        _emit_error(args, exc)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("Interrupted. Run the same command again to finish.", file=sys.stderr)
        return 130


def open_library(args):
    from engine.config import load_settings
    from engine.library import Library

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Library(load_settings(**overrides))


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    with open_library(args) as library:
        bar = tqdm(total=None, unit="file", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)

        def progress(event):
            if event.result is not None:
                bar.update(1)
                bar.set_postfix_str(Path(event.source).name[:40])

        results = library.ingest(args.paths, copy=args.copy, progress=progress)
        bar.close()
    added = [{"path": r.source, "id": r.track_id} for r in results if r.status == "added"]
    duplicates = [{"path": r.source, "id": r.track_id} for r in results if r.status == "duplicate"]
    failed = [{"path": r.source, "error": r.error} for r in results if r.status == "failed"]
    if args.json:
        _print_json({"added": added, "duplicates": duplicates, "failed": failed})
    else:
        for item in failed:
            print(f"FAILED  {item['error']}", file=sys.stderr)
        print(f"{len(added)} added, {len(duplicates)} already in the library, {len(failed)} failed.")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_stats(args) -> int:
    with open_library(args) as library:
        stats = library.stats()
    if args.json:
        _print_json(stats)
    else:
        formats = ", ".join(f"{n} {fmt}" for fmt, n in stats["formats"].items()) or "none"
        print(f"{stats['tracks']} tracks, {_duration(stats['total_duration_s'])} of audio ({formats}).")
    return EXIT_OK


def cmd_list(args) -> int:
    with open_library(args) as library:
        tracks = library.tracks(limit=args.limit, offset=args.offset)
    if args.json:
        _print_json([_public(t) for t in tracks])
    elif not tracks:
        print("The library is empty. Import files with: python -m engine ingest FOLDER")
    else:
        for t in tracks:
            tempo = f"{t.tempo:.1f} BPM" if t.tempo else "no pulse"
            print(f"{t.id[:12]}  {_duration(t.duration):>8}  {tempo:>10}  {t.format:<5} {t.filename}")
    return EXIT_OK


def cmd_show(args) -> int:
    with open_library(args) as library:
        track = library.track(args.id)
    if args.json:
        _print_json(_public(track))
    else:
        for key, value in _public(track).items():
            print(f"{key:>20}: {value}")
    return EXIT_OK


def cmd_delete(args) -> int:
    with open_library(args) as library:
        track = library.delete(args.id)
    if args.json:
        _print_json({"deleted": _public(track)})
    else:
        kept = "" if track.storage == "managed" else f" (your file {track.path} was not touched)"
        print(f"Deleted {track.filename}{kept}.")
    return EXIT_OK


def cmd_search(args) -> int:
    from engine.library import Filters

    options = dict(filters=Filters(min_duration=args.min_duration, max_duration=args.max_duration,
                                   min_tempo=args.min_tempo, max_tempo=args.max_tempo, formats=tuple(args.format)),
                   limit=args.limit, min_score=args.min_score, segments=args.segments)
    with open_library(args) as library:
        if args.audio is not None:
            hits = library.search_audio(args.audio, **options)
        elif args.like is not None:
            hits = library.search_like(args.like, **options)
        else:
            hits = library.search_text(args.prompt, **options)
    if args.json:
        _print_json([hit.to_dict() for hit in hits])
    elif not hits:
        print("No matches.")
    else:
        for hit in hits:
            at = f"@{hit.segment_start:6.1f}s" if hit.segment_start is not None else " " * 8
            print(f"{hit.rank:>3}. {hit.score:6.3f} {at}  {hit.id[:12]}  {hit.filename}")
    return EXIT_OK


def cmd_reembed(args) -> int:
    with open_library(args) as library:
        results = library.reembed(retry=args.retry)
    done = [{"id": r.track_id, "filename": r.source} for r in results if r.status == "added"]
    failed = [{"id": r.track_id, "filename": r.source, "error": r.error} for r in results if r.status == "failed"]
    if args.json:
        _print_json({"embedded": done, "failed": failed})
    else:
        for item in failed:
            print(f"FAILED  {item['error']}", file=sys.stderr)
        print(f"{len(done)} embedded, {len(failed)} failed." if results else "Every track is up to date.")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_model(args) -> int:
    from engine.config import load_settings
    from engine.library import Library

    # Without opening the library: this works while another process holds it.
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    status = Library.describe_model(settings, load=args.load)
    if args.json:
        _print_json(status)
    else:
        for key in ("backend", "model", "model_id", "device", "precision", "dim", "loaded", "error", "hint"):
            if status.get(key) is not None:
                print(f"{key:>10}: {status[key]}")
    return EXIT_OK


def cmd_export(args) -> int:
    with open_library(args) as library:
        manifest = library.export(args.target)
    if args.json:
        _print_json(manifest)
    else:
        print(f"Exported {manifest['rows']['tracks']} tracks and {manifest['managed_files']} audio files to {args.target}.")
    return EXIT_OK


def cmd_import(args) -> int:
    with open_library(args) as library:
        manifest = library.restore(args.source)
    if args.json:
        _print_json(manifest)
    else:
        print(f"Imported {manifest['rows']['tracks']} tracks from {args.source}.")
    return EXIT_OK


def cmd_hash_password(args) -> int:
    import getpass

    from engine.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Dashboard password: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ.", file=sys.stderr)
            return EXIT_USAGE
    else:
        password = sys.stdin.readline().rstrip("\n")
    encoded = hash_password(password)
    if args.json:
        _print_json({"hash": encoded})
    else:
        print(f"TRAUM_AUTH_PASSWORD_HASH='{encoded}'")
    return EXIT_OK


def _public(track) -> dict:
    return {key: _jsonable(value) for key, value in track.to_dict().items()}


def _jsonable(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _print_json(document) -> None:
    json.dump(document, sys.stdout, default=_jsonable, indent=2)
    sys.stdout.write("\n")


def _emit_error(args, exc: EngineError) -> None:
    if getattr(args, "json", False):
        _print_json({"error": exc.to_dict()})
    print(f"Error: {exc}", file=sys.stderr)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
