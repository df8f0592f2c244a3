"""What a sample is, on the command line: the filters on kind, key and category, and ``reanalyse``."""

from __future__ import annotations

from engine.categories import KINDS, NAMES
from engine.cli.common import FileBar, open_library, report_track_results


def register(commands, common) -> None:
    reanalyse = commands.add_parser(
        "reanalyse", parents=[common], help="describe tracks analysed by an older version (kind, tempo, key)",
        description="Measure every track the current analysis has not seen again from its file (kind, tempo, "
                    "key, features) without re-embedding it, then score categories from stored embeddings.")
    reanalyse.set_defaults(run=cmd_reanalyse)


def add_filters(parser) -> None:
    """The filters on what a sample is, for ``list`` and ``search``."""
    parser.add_argument("--kind", action="append", default=[], choices=KINDS, help="only this kind (repeatable)")
    parser.add_argument("--key", metavar="KEY", help='only this key, e.g. "F minor", "F#m", "4A" (a bare note: '
                                                     "either mode)")
    parser.add_argument("--compatible-with", metavar="KEY",
                        help="only keys that mix with KEY: it, its relative, a fifth up and down")
    parser.add_argument("--category", action="append", default=[], choices=NAMES, metavar="NAME",
                        help=f"only this category (repeatable): {', '.join(NAMES)}")


def filters_from(args, **measured):
    """Filters from the parsed options on what a sample is and what was kept (engine.cli.curation), plus
    ``measured`` (duration, tempo, formats)."""
    from engine.library import Filters

    return Filters(kinds=tuple(args.kind), key=args.key, compatible_with=args.compatible_with,
                   categories=tuple(args.category), favourite=args.favourite, tags=tuple(args.tag),
                   collection=args.collection, **measured)


def cmd_reanalyse(args) -> int:
    busy = "The dashboard reanalyses outdated tracks itself when it starts, with its progress on Home."
    with open_library(args, through_server=False, busy_hint=busy) as library, FileBar(args, "analysed") as bar:
        results = library.reanalyse(progress=bar.on_file)
    return report_track_results(args, results, done="analysed")
