"""Traum-Engine: a local-first audio library with CLAP search."""

import os

__version__ = "0.1.0"

# Same vectors whatever the thread count: torch's CPU build does its matrix products in MKL, whose
# fastest paths split sums by thread, so the same prompt gave vectors differing in the last bits
# between processes (a prompt runs on one or two threads by load: engine.clap.runtime), and so
# scores differing in the seventh digit. Strict conditional reproducibility fixes the split (no
# measurable cost: docs/BENCHMARKS.md). Read when MKL starts, so set before torch is imported;
# the engine imports torch only when it needs it. A value the user set is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
