"""Command line: ``python -m engine COMMAND``.

Every command takes ``--json`` (exactly one JSON document on stdout) and
``--debug`` (show tracebacks). Exit status: 0 success, 1 when something
failed (a file, a lookup), 2 for usage or configuration errors. Commands
live by what they work on: tracks.py, folders.py, describe.py, curation.py and cluster.py; common.py holds
output.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from engine.cli import access, cluster, curation, describe, folders, tracks
from engine.cli.common import EXIT_FAILED, EXIT_USAGE, emit_error
from engine.errors import ConfigError, EngineError


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
    tracks.register(commands, common)
    folders.register(commands, common)
    describe.register(commands, common)
    curation.register(commands, common)
    curation.register_duplicates(commands, common)
    access.register(commands, common)
    cluster.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.run(args)
    except EngineError as exc:
        if args.debug:
            raise
        emit_error(args, exc)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("Interrupted. Run the same command again to finish.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of the output went away (``list --json | head``): nothing of ours failed, and
        # Python's own flush of stdout at exit must not fail again (the recipe of Python's docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
