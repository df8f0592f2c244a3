"""Traum-Engine: a local-first audio library with CLAP search."""

__version__ = "0.1.0"
