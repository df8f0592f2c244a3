"""What a person keeps, on the command line: ``favourite``, ``tag``, ``collection``, and the filters
``--favourite``, ``--tag`` and ``--collection`` for ``list`` and ``search``."""

from __future__ import annotations

from pathlib import Path

from engine.cli.common import EXIT_OK, emit, open_library, print_json, public
from engine.handoff import playable


def register(commands, common) -> None:
    favourite = commands.add_parser("favourite", parents=[common], help="star a track (or unstar it with --off)")
    favourite.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
    favourite.add_argument("--off", action="store_true", help="remove the star")
    favourite.set_defaults(run=cmd_favourite)

    tag = commands.add_parser("tag", help="add or remove a track's tags, or list every tag",
                              description="Tags are free text, any case (kept in lower case), many per track.")
    actions = tag.add_subparsers(dest="action", required=True)
    for name, help_text in (("add", "add tags to a track"), ("remove", "remove tags from a track")):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("id", help="track id (or a unique prefix of at least 6 characters)")
        action.add_argument("tags", nargs="+", metavar="TAG")
        action.set_defaults(run=cmd_tag)
    listing = actions.add_parser("list", parents=[common], help="every tag with how many tracks carry it")
    listing.set_defaults(run=cmd_tag_list)

    collection = commands.add_parser("collection", help="named, ordered lists of tracks",
                                     description="Collections are named, ordered lists of tracks; a track can "
                                                 "be in many. Deleting one never deletes its tracks.")
    actions = collection.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="make an empty collection")
    create.add_argument("name")
    create.set_defaults(run=cmd_collection_create)
    for name, help_text in (("add", "append tracks, in the order given"), ("remove", "take tracks out")):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("name")
        action.add_argument("ids", nargs="+", metavar="ID")
        action.set_defaults(run=cmd_collection_change)
    listing = actions.add_parser("list", parents=[common], help="every collection with its size")
    listing.set_defaults(run=cmd_collection_list)
    show = actions.add_parser("show", parents=[common], help="a collection's tracks, in order")
    show.add_argument("name")
    show.set_defaults(run=cmd_collection_show)
    delete = actions.add_parser("delete", parents=[common], help="forget a collection (its tracks stay)")
    delete.add_argument("name")
    delete.set_defaults(run=cmd_collection_delete)
    export = actions.add_parser("export", parents=[common], help="write a collection as files, M3U or CSV",
                                description="Copy a collection's audio files into DIR (numbered in order), or "
                                            "write FILE.m3u (absolute paths) or FILE.csv.")
    export.add_argument("name")
    export.add_argument("target", type=Path, metavar="DIR|FILE")
    export.set_defaults(run=cmd_collection_export)


def register_duplicates(commands, common) -> None:
    from engine.library import DUPLICATE_THRESHOLD

    duplicates = commands.add_parser(
        "duplicates", parents=[common], help="near-duplicate groups (or, with --exact, files found twice)",
        description="Group tracks that are the same sound in another form (encoding, level, sample rate, a little "
                    "silence): embeddings at least THRESHOLD alike (cosine) and durations that agree. With --exact: "
                    "tracks whose same bytes sit at several places.")
    duplicates.add_argument("--threshold", type=float, default=DUPLICATE_THRESHOLD, metavar="T",
                            help=f"cosine two tracks need (default {DUPLICATE_THRESHOLD}; lower finds more)")
    duplicates.add_argument("--exact", action="store_true", help="list exact copies: one track, several files")
    duplicates.set_defaults(run=cmd_duplicates)


def add_filters(parser) -> None:
    """The filters on what a person kept, for ``list`` and ``search``."""
    parser.add_argument("--favourite", action="store_true", help="only favourites")
    parser.add_argument("--tag", action="append", default=[], metavar="NAME",
                        help="only tracks with this tag (repeatable: every one of them)")
    parser.add_argument("--collection", metavar="NAME", help="only the tracks of this collection")


def cmd_favourite(args) -> int:
    with open_library(args) as library:
        track = library.set_favourite(args.id, not args.off)
    emit(args, public(track), f"{'Starred' if track.favourite else 'Unstarred'} {track.filename}.")
    return EXIT_OK


def cmd_tag(args) -> int:
    change = {"add": args.tags} if args.action == "add" else {"remove": args.tags}
    with open_library(args) as library:
        track = library.tag(args.id, **change)
    emit(args, public(track), f"{track.filename}: " + (", ".join(track.tags) or "no tags") + ".")
    return EXIT_OK


def cmd_tag_list(args) -> int:
    with open_library(args) as library:
        tags = library.tags()
    if args.json:
        print_json([{"tag": tag, "tracks": n} for tag, n in tags])
    else:
        print("\n".join(f"{n:>6}  {tag}" for tag, n in tags) or "No tags yet. Add one with: "
                                                                  "python -m engine tag add ID TAG")
    return EXIT_OK


def cmd_collection_create(args) -> int:
    with open_library(args) as library:
        name = library.create_collection(args.name)
    emit(args, {"created": name}, f"Created the collection '{name}'.")
    return EXIT_OK


def cmd_collection_change(args) -> int:
    with open_library(args) as library:
        if args.action == "add":
            name = library.add_to_collection(args.name, args.ids)
        else:
            name = library.remove_from_collection(args.name, args.ids)
        shown, tracks = library.collection(name)
    emit(args, {"name": shown, "tracks": [t.id for t in tracks]}, f"'{shown}' holds {len(tracks)} tracks.")
    return EXIT_OK


def cmd_collection_list(args) -> int:
    with open_library(args) as library:
        collections = library.collections()
    if args.json:
        print_json(collections)
    else:
        print("\n".join(f"{c['tracks']:>6}  {c['name']}" for c in collections)
              or "No collections yet. Make one with: python -m engine collection create NAME")
    return EXIT_OK


def cmd_collection_show(args) -> int:
    with open_library(args) as library:
        name, tracks = library.collection(args.name)
    if args.json:
        print_json({"name": name, "tracks": [public(t) for t in tracks]})
    else:
        print(f"{name}: {len(tracks)} tracks")
        for number, track in enumerate(tracks, 1):
            print(f"{number:>4}. {track.id[:12]}  {track.filename}")
    return EXIT_OK


def cmd_collection_delete(args) -> int:
    with open_library(args) as library:
        name = library.delete_collection(args.name)
    emit(args, {"deleted": name}, f"Deleted the collection '{name}' (its tracks stay in the library).")
    return EXIT_OK


def cmd_collection_export(args) -> int:
    from engine.handoff import write_collection

    with open_library(args) as library:
        name, tracks = library.collection(args.name)
        written = write_collection(tracks, args.target)
    emit(args, written, f"Wrote '{name}' ({len(tracks)} tracks) to {args.target}.")
    return EXIT_OK


def cmd_duplicates(args) -> int:
    with open_library(args) as library:
        if args.exact:
            copies = library.copies()
        else:
            groups = library.duplicates(threshold=args.threshold)
    if args.exact:
        if args.json:
            print_json([{"id": t.id, "filename": t.filename, "locations": list(t.locations)} for t in copies])
        else:
            for track in copies:
                print(f"{track.id[:12]}  {track.filename}: {len(track.locations)} places")
                for place in track.locations:
                    print(f"    {place}")
            print(f"{len(copies)} tracks found at more than one place.")
        return EXIT_OK
    if args.json:
        print_json([{"ids": [t.id for t in g.tracks], "pairs": [[a, b, round(score, 6)] for a, b, score in g.pairs]}
                    for g in groups])
    else:
        for number, g in enumerate(groups, 1):
            print(f"Group {number} (lowest similarity {min(score for *_, score in g.pairs):.3f}):")
            for track in g.tracks:
                where = playable(track) or track.path
                print(f"    {track.id[:12]}  {track.duration:7.2f} s  {track.format:<5} {where}")
        print(f"{len(groups)} groups of near-duplicates." if groups else "No near-duplicates at this threshold.")
    return EXIT_OK
