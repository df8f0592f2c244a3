"""Commands on tracks: ingest, stats, list, show, delete, search, reembed, model, export, import
(the filters on what a sample is come from describe.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import cluster
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    FileBar,
    duration,
    emit,
    open_library,
    print_json,
    public,
    report_track_results,
)
from engine.cli.curation import add_filters as add_kept_filters
from engine.cli.describe import add_filters, filters_from
from engine.library import DEFAULT_BUT_WEIGHT

OUTPUTS = ("text", "json", "csv", "m3u")


def register(commands, common) -> None:
    """Add the track commands to the parser."""
    ingest = commands.add_parser("ingest", parents=[common], help="import audio files and folders",
                                 description="Import audio files and folders (recursively) into the library.")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--copy", action="store_true",
                        help="keep a copy under DATA_DIR/audio instead of referencing the files where they are")
    cluster.add_ray_options(ingest)
    ingest.set_defaults(run=cmd_ingest)

    stats = commands.add_parser("stats", parents=[common], help="library totals")
    stats.set_defaults(run=cmd_stats)

    listing = commands.add_parser("list", parents=[common], help="list tracks, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--missing", action="store_true",
                         help="list the tracks whose files are all gone (left out otherwise)")
    add_filters(listing)
    add_kept_filters(listing)
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", parents=[common], help="everything stored about one track")
    show.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
    show.set_defaults(run=cmd_show)

    delete = commands.add_parser("delete", parents=[common], help="remove a track (never your original file)")
    delete.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
    delete.set_defaults(run=cmd_delete)

    search = commands.add_parser("search", parents=[common], help="search by prompt, example audio or track",
                                 description="Rank the library by CLAP similarity to a prompt, a clip or a track. "
                                             'With --like, a prompt turns the search: --like ID "darker".')
    search.add_argument("prompt", nargs="?", help='a text prompt, e.g. "punchy 808 kick"; with --like, what to '
                                                  'change, e.g. "darker", "with reverb"')
    example = search.add_mutually_exclusive_group()
    example.add_argument("--audio", type=Path, metavar="FILE", help="an example audio file")
    example.add_argument("--like", metavar="ID", help="a track id: find more like it")
    search.add_argument("--weight", type=float, default=DEFAULT_BUT_WEIGHT, metavar="W",
                        help=f"with --like and a prompt: how far the prompt moves the search, 0 to 2 "
                             f"(default {DEFAULT_BUT_WEIGHT})")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--min-score", type=float)
    search.add_argument("--min-duration", type=float, metavar="S")
    search.add_argument("--max-duration", type=float, metavar="S")
    search.add_argument("--min-tempo", type=float, metavar="BPM")
    search.add_argument("--max-tempo", type=float, metavar="BPM")
    search.add_argument("--file-type", action="append", default=[], metavar="TYPE",
                        help="only this file type, e.g. wav (repeatable)")
    search.add_argument("--format", choices=OUTPUTS, default="text",
                        help="text (default), json (as --json), csv (a header row, then rank, score, filename, "
                             "path, ...) or m3u (a playlist of absolute paths)")
    add_filters(search)
    add_kept_filters(search)
    search.add_argument("--segments", action="store_true", help="rank by the best single 10 s segment")
    search.set_defaults(run=cmd_search, parser=search)

    reembed = commands.add_parser("reembed", parents=[common], help="compute missing or outdated embeddings")
    reembed.add_argument("--retry", action="store_true", help="try loading the model again after a failure")
    reembed.set_defaults(run=cmd_reembed)

    model = commands.add_parser("model", parents=[common], help="load the CLAP model and check it",
                                description="Load the CLAP model, report its id, size and device, and check that "
                                            "it tells unrelated prompts and sounds apart.")
    loading = model.add_mutually_exclusive_group()
    loading.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    loading.add_argument("--no-load", action="store_true", help="only say what would be loaded (fast)")
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


def cmd_ingest(args) -> int:
    if args.ray is not None:
        if args.copy:
            print("--copy and --ray do not go together: a cluster ingest indexes files in place.", file=sys.stderr)
            return EXIT_USAGE
        return cluster.cmd_ingest_on_ray(args)
    with open_library(args) as library, FileBar(args, "analysed") as bar:
        results = library.ingest(args.paths, copy=args.copy, progress=bar.on_file)
    added = [{"path": r.source, "id": r.track_id} for r in results if r.status == "added"]
    duplicates = [{"path": r.source, "id": r.track_id} for r in results if r.status == "duplicate"]
    failed = [{"path": r.source, "error": r.error} for r in results if r.status == "failed"]
    if args.json:
        print_json({"added": added, "duplicates": duplicates, "failed": failed})
    else:
        for item in failed:
            print(f"FAILED  {item['error']}", file=sys.stderr)
        print(f"{len(added)} added, {len(duplicates)} already in the library, {len(failed)} failed.")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_stats(args) -> int:
    with open_library(args) as library:
        stats = library.stats()
    if args.json:
        print_json(stats)
    else:
        formats = ", ".join(f"{n} {fmt}" for fmt, n in stats["formats"].items()) or "none"
        print(f"{stats['tracks']} tracks, {duration(stats['total_duration_s'])} of audio ({formats}).")
    return EXIT_OK


def cmd_list(args) -> int:
    filters = filters_from(args)
    with open_library(args) as library:
        tracks = library.tracks(filters, missing=args.missing, limit=args.limit, offset=args.offset)
    if args.json:
        print_json([public(t) for t in tracks])
    elif not tracks:
        if args.missing:
            print("No track is missing.")
        elif filters.beyond_measurements or args.offset:
            print("No tracks match.")
        else:
            print("The library is empty. Add a folder with: python -m engine folder add FOLDER")
    else:
        for t in tracks:
            tempo = f"{t.tempo:.1f} BPM" if t.tempo else "no pulse"
            print(f"{t.id[:12]}  {duration(t.duration):>8}  {t.kind or '?':<8} {tempo:>10}  {t.key or '':<9} "
                  f"{t.category or '':<14} {t.format:<5} {'* ' if t.favourite else ''}{t.filename}"
                  + (f"  [{', '.join(t.tags)}]" if t.tags else ""))
    return EXIT_OK


def cmd_show(args) -> int:
    with open_library(args) as library:
        track = library.track(args.id)
    if args.json:
        print_json(public(track))
    else:
        for key, value in public(track).items():
            print(f"{key:>20}: {value}")
    return EXIT_OK


def cmd_delete(args) -> int:
    with open_library(args) as library:
        track = library.delete(args.id)
    kept = "" if track.storage == "managed" else f" (your file {track.path} was not touched)"
    emit(args, {"deleted": public(track)}, f"Deleted {track.filename}{kept}.")
    return EXIT_OK


def cmd_search(args) -> int:
    if args.prompt is None and args.audio is None and args.like is None:
        args.parser.error("give a prompt, --audio FILE or --like ID.")
    if args.prompt is not None and args.audio is not None:
        args.parser.error("give either a prompt or --audio FILE, not both (a prompt turns a --like search).")
    options = dict(filters=filters_from(args, min_duration=args.min_duration, max_duration=args.max_duration,
                                        min_tempo=args.min_tempo, max_tempo=args.max_tempo,
                                        formats=tuple(args.file_type)),
                   limit=args.limit, min_score=args.min_score, segments=args.segments)
    with open_library(args) as library:
        if args.audio is not None:
            hits = library.search_audio(args.audio, **options)
        elif args.like is not None:
            hits = library.search_like(args.like, but=args.prompt, weight=args.weight, **options)
        else:
            hits = library.search_text(args.prompt, **options)
    output = "json" if args.json else args.format
    if output == "json":
        print_json([hit.to_dict() for hit in hits])
    elif output in ("csv", "m3u"):
        from engine.handoff import to_csv, to_m3u

        sys.stdout.write(to_csv(hits) if output == "csv" else to_m3u(hits))
    elif not hits:
        print("No matches.")
    else:
        for hit in hits:
            at = f"@{hit.segment_start:6.1f}s" if hit.segment_start is not None else " " * 8
            about = "  ".join(part for part in (hit.kind, hit.key, hit.category) if part)
            about = f"  ({about})" if about else ""
            print(f"{hit.rank:>3}. {hit.score:6.3f} {at}  {hit.id[:12]}  {hit.filename}{about}")
    return EXIT_OK


def cmd_reembed(args) -> int:
    with open_library(args, through_server=False,
                      busy_hint="The dashboard embeds new tracks itself; to embed with another model, stop it "
                                "(Ctrl-C where it runs) and run reembed.") as library:
        results = library.reembed(retry=args.retry)
    return report_track_results(args, results, done="embedded")


def cmd_model(args) -> int:
    from engine.config import load_settings
    from engine.library import Library

    # Without opening the library: this works while another process holds it.
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    status = Library.describe_model(settings, load=not args.no_load)
    if args.json:
        print_json(status)
    else:
        for key in ("backend", "model", "model_id", "device", "precision", "dim", "loaded", "error", "hint"):
            if status.get(key) is not None:
                print(f"{key:>10}: {status[key]}")
        sanity = status["sanity"]
        if sanity is not None:
            print(f"{'check':>10}: " + ("ok" if sanity["ok"] else "FAILED") + f" (unrelated prompts: mean cosine "
                  f"{sanity['text_mean_cosine']:.3f}, sounds: {sanity['audio_mean_cosine']:.3f})")
            for problem in sanity["problems"]:
                print(f"WARNING  {problem}", file=sys.stderr)
    return EXIT_FAILED if status["error"] and not args.no_load else EXIT_OK


def cmd_export(args) -> int:
    with open_library(args) as library:
        manifest = library.export(args.target)
    emit(args, manifest,
         f"Exported {manifest['rows']['tracks']} tracks and {manifest['managed_files']} audio files to {args.target}.")
    return EXIT_OK


def cmd_import(args) -> int:
    with open_library(args, through_server=False,
                      busy_hint="import restores an export into an empty library of its own: stop the dashboard "
                                "(Ctrl-C where it runs), or import into another one with --data-dir.") as library:
        manifest = library.restore(args.source)
    emit(args, manifest, f"Imported {manifest['rows']['tracks']} tracks from {args.source}.")
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
        print_json({"hash": encoded})
    else:
        print(f"TRAUM_AUTH_PASSWORD_HASH='{encoded}'")
    return EXIT_OK
