"""The command line, ``python -m engine``: see engine.cli.main."""

from engine.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
