"""Commands on library folders: folder add|list|remove, sync, watch."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from engine.cli.common import EXIT_FAILED, EXIT_OK, FileBar, emit, open_library, print_json


def register(commands, common) -> None:
    """Add the folder commands to the parser."""
    folder = commands.add_parser("folder", help="the folders the library indexes in place",
                                 description="Add, list and remove the folders the library indexes in place.")
    actions = folder.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", parents=[common], help="add a folder and import what it holds",
                             description="Remember a folder, import its audio in place, and watch it.")
    add.add_argument("path", type=Path, metavar="PATH")
    add.add_argument("--no-watch", action="store_true", help="do not follow changes while a watcher runs")
    add.set_defaults(run=cmd_folder_add)

    listing = actions.add_parser("list", parents=[common], help="the library's folders")
    listing.set_defaults(run=cmd_folder_list)

    remove = actions.add_parser("remove", parents=[common],
                                help="forget a folder and the tracks found only there (never touches a file)")
    remove.add_argument("path", type=Path, metavar="PATH")
    remove.set_defaults(run=cmd_folder_remove)

    sync = commands.add_parser("sync", parents=[common], help="rescan the library's folders",
                               description="Rescan every library folder (or the given ones): import new and changed "
                                           "files, follow moves, flag missing ones.")
    sync.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    sync.add_argument("--prune", action="store_true", help="remove tracks whose files are all gone")
    sync.set_defaults(run=cmd_sync)

    watch = commands.add_parser("watch", parents=[common], help="follow the watched folders until stopped",
                                description="Import, move and flag files as they change in the watched folders. "
                                            "Stop with Ctrl-C.")
    watch.set_defaults(run=cmd_watch)


def cmd_folder_add(args) -> int:
    with open_library(args) as library, FileBar(args, "analysed") as bar:
        report = library.add_folder(args.path, watch=not args.no_watch, progress=bar.on_sync)
    return _print_report(args, report)


def cmd_folder_list(args) -> int:
    with open_library(args) as library:
        folders = library.folders()
    if args.json:
        print_json([folder.to_dict() for folder in folders])
    elif not folders:
        print("No folders yet. Add one with: python -m engine folder add FOLDER")
    else:
        for folder in folders:
            synced = folder.last_sync.strftime("%Y-%m-%d %H:%M") if folder.last_sync else "never"
            watched = "watched" if folder.watched else "not watched"
            print(f"{folder.path}  {folder.tracks} tracks, {folder.missing} missing, {watched}, synced {synced}")
    return EXIT_OK


def cmd_folder_remove(args) -> int:
    with open_library(args) as library:
        removed = library.remove_folder(args.path)
    emit(args, removed, f"Removed {removed['removed']} and {len(removed['tracks_removed'])} tracks found only there "
                        "(no file was touched).")
    return EXIT_OK


def cmd_sync(args) -> int:
    with open_library(args) as library, FileBar(args, "analysed") as bar:
        report = library.sync(args.paths or None, prune=args.prune, progress=bar.on_sync)
    return _print_report(args, report)


def cmd_watch(args) -> int:
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    busy = "The dashboard follows the watched folders itself while it runs."
    with open_library(args, through_server=False, busy_hint=busy) as library:
        folders = [f.path for f in library.folders() if f.watched]
        if not folders:
            print("No folder is watched. Add one with: python -m engine folder add FOLDER", file=sys.stderr)
            return EXIT_FAILED
        print(f"Watching {len(folders)} folder{'s' if len(folders) != 1 else ''}; Ctrl-C stops.", file=sys.stderr,
              flush=True)
        library.watch(stop, on_sync=_print_event)  # first syncs what changed while nothing watched
    print("Stopped.", file=sys.stderr)
    return EXIT_OK


def _print_event(report) -> None:
    """One line on stderr per sync while watching (what changed, not what stayed)."""
    changes = [(len(report.added), "added"), (len(report.changed), "changed"), (len(report.moved), "moved"),
               (len(report.duplicates), "more locations"), (len(report.restored), "back again"),
               (len(report.missing), "missing"), (len(report.failed), "failed")]
    said = ", ".join(f"{n} {label}" for n, label in changes if n) or "no change"
    print(f"{time.strftime('%H:%M:%S')} synced: {said}.", file=sys.stderr, flush=True)
    for item in report.failed:
        print(f"FAILED  {item['error']}", file=sys.stderr, flush=True)


def _print_report(args, report) -> int:
    if args.json:
        print_json(report.to_dict())
    else:
        for item in report.failed:
            print(f"FAILED  {item['error']}", file=sys.stderr)
        counts = [(len(report.added), "added"), (len(report.changed), "changed"), (len(report.moved), "moved"),
                  (len(report.duplicates), "more locations"), (len(report.restored), "back again"),
                  (len(report.missing), "missing"), (len(report.pruned), "pruned"), (len(report.failed), "failed"),
                  (report.unchanged, "unchanged"), (report.skipped, "skipped (not audio)"),
                  (report.failed_before, "failed before and unchanged")]
        print(", ".join(f"{n} {label}" for n, label in counts if n or label in ("added", "failed")) + ".")
    return EXIT_FAILED if report.failed else EXIT_OK
