"""Library analytics, aggregated in DuckDB so a 100k-track library ships
a few hundred numbers to the browser, not 100k points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.store.database import Database

if TYPE_CHECKING:  # pandas costs about 0.4 s to import: not on the dashboard's first page
    import pandas as pd

SCATTER_POINTS = 5_000  # above this, the tempo/centroid view becomes a density grid
TEMPO_BIN_BPM = 5.0
CENTROID_BIN_HZ = 250.0
CENTROID_CEILING_HZ = 12_000.0  # brighter tracks share the top bin
LOUDNESS_BIN_DB = 3.0


def tempo_histogram(db: Database, *, width_bpm: float = TEMPO_BIN_BPM) -> pd.DataFrame:
    """Tracks per tempo bin: columns bin_start (BPM), count. Tracks without a pulse are left out."""
    return db.frame(
        "summarise tempo",
        "SELECT floor(tempo / ?) * ? AS bin_start, count(*) AS count FROM features"
        " WHERE tempo IS NOT NULL GROUP BY bin_start ORDER BY bin_start",
        [width_bpm, width_bpm],
    )


def centroid_histogram(db: Database, *, width_hz: float = CENTROID_BIN_HZ, ceiling_hz: float = CENTROID_CEILING_HZ) -> pd.DataFrame:
    """Tracks per spectral-centroid bin (Hz); centroids above ``ceiling_hz`` share the last bin."""
    return db.frame(
        "summarise spectral centroid",
        "SELECT floor(least(spectral_centroid, ?) / ?) * ? AS bin_start, count(*) AS count FROM features"
        " WHERE spectral_centroid > 0 GROUP BY bin_start ORDER BY bin_start",
        [ceiling_hz - 1e-6, width_hz, width_hz],
    )


DURATION_EDGES = [0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600]


def duration_histogram(db: Database) -> pd.DataFrame:
    """Tracks per duration band (one-shots to full tracks): columns band, count, in band order."""
    import pandas as pd

    labels = [f"{_short(lo)}–{_short(hi)}" for lo, hi in zip(DURATION_EDGES, DURATION_EDGES[1:])]
    labels.append(f"{_short(DURATION_EDGES[-1])}+")
    counts = db.frame(
        "summarise durations",
        "SELECT len(list_filter(?::DOUBLE[], x -> x <= duration)) - 1 AS band, count(*) AS count"
        " FROM tracks GROUP BY band",
        [DURATION_EDGES],
    )
    by_band = dict(zip(counts["band"].astype(int), counts["count"].astype(int)))
    return pd.DataFrame({"band": labels, "count": [by_band.get(i, 0) for i in range(len(labels))]})


def loudness_histogram(db: Database, *, width_db: float = LOUDNESS_BIN_DB) -> pd.DataFrame:
    """Tracks per RMS level bin in dBFS (20·log10 of the mean RMS); silence is left out."""
    return db.frame(
        "summarise loudness",
        "SELECT floor(20 * log10(rms_energy) / ?) * ? AS bin_start, count(*) AS count FROM features"
        " WHERE rms_energy > 1e-6 GROUP BY bin_start ORDER BY bin_start",
        [width_db, width_db],
    )


def tempo_vs_centroid(db: Database) -> tuple[str, pd.DataFrame]:
    """("points", one row per track with filename) for small libraries, else ("density", binned counts)."""
    total = db.frame("count tracks", "SELECT count(*) AS n FROM features WHERE tempo IS NOT NULL")["n"][0]
    if total <= SCATTER_POINTS:
        return "points", db.frame(
            "read tempo and centroid",
            "SELECT t.filename, f.tempo, f.spectral_centroid FROM features f JOIN tracks t ON t.id = f.track_id"
            " WHERE f.tempo IS NOT NULL ORDER BY t.filename",
        )
    return "density", db.frame(
        "bin tempo against centroid",
        "SELECT floor(tempo / ?) * ? AS tempo, floor(least(spectral_centroid, ?) / ?) * ? AS spectral_centroid,"
        " count(*) AS count FROM features WHERE tempo IS NOT NULL GROUP BY ALL",
        [TEMPO_BIN_BPM, TEMPO_BIN_BPM, CENTROID_CEILING_HZ - 1e-6, CENTROID_BIN_HZ, CENTROID_BIN_HZ],
    )


def distributions(db: Database) -> dict | None:
    """Every distribution Analytics draws, or None for an empty library: frames ``tempo``,
    ``centroid``, ``duration``, ``loudness`` and ``scatter`` with ``scatter_kind`` ("points" or
    "density"), and the bin widths the histograms were counted in."""
    duration = duration_histogram(db)
    if duration["count"].sum() == 0:
        return None
    scatter_kind, scatter = tempo_vs_centroid(db)
    return {"tempo": tempo_histogram(db), "centroid": centroid_histogram(db), "duration": duration,
            "loudness": loudness_histogram(db), "scatter": scatter, "scatter_kind": scatter_kind,
            "tempo_bin_bpm": TEMPO_BIN_BPM, "centroid_bin_hz": CENTROID_BIN_HZ, "loudness_bin_db": LOUDNESS_BIN_DB}


def _short(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"
