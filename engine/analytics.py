"""Library analytics, aggregated in DuckDB so a 100k-track library ships
a few hundred numbers to the browser, not 100k points: how tracks spread over
tempo, brightness, length and level, and what they are (kind, key, category)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from engine import categories as vocabulary
from engine.keys import MODES, TONICS, camelot, key_label
from engine.store.database import Database
from engine.store.types import CATEGORY_MODEL

# Every function takes ``within``: given the column that holds a track id, SQL (with its
# parameters) keeping the rows of the tracks being charted: a filter's (``Tracks.within``) or all.
Within = Callable[[str], tuple[str, list]]


def everything(column: str) -> tuple[str, list]:
    return "TRUE", []


ALL: Within = everything

if TYPE_CHECKING:  # pandas costs about 0.4 s to import: not on the dashboard's first page
    import pandas as pd

SCATTER_POINTS = 5_000  # above this, the tempo/centroid view becomes a density grid
TEMPO_BIN_BPM = 5.0
CENTROID_BIN_HZ = 250.0
CENTROID_CEILING_HZ = 12_000.0  # brighter tracks share the top bin
LOUDNESS_BIN_DB = 3.0


def tempo_histogram(db: Database, *, width_bpm: float = TEMPO_BIN_BPM, within: Within = ALL) -> pd.DataFrame:
    """Tracks per tempo bin: columns bin_start (BPM), count. Tracks without a pulse are left out."""
    scope, scoped = within("track_id")
    return db.frame(
        "summarise tempo",
        "SELECT floor(tempo / ?) * ? AS bin_start, count(*) AS count FROM features"
        f" WHERE tempo IS NOT NULL AND {scope} GROUP BY bin_start ORDER BY bin_start",
        [width_bpm, width_bpm, *scoped],
    )


def centroid_histogram(db: Database, *, width_hz: float = CENTROID_BIN_HZ, ceiling_hz: float = CENTROID_CEILING_HZ,
                       within: Within = ALL) -> pd.DataFrame:
    """Tracks per spectral-centroid bin (Hz); centroids above ``ceiling_hz`` share the last bin."""
    scope, scoped = within("track_id")
    return db.frame(
        "summarise spectral centroid",
        "SELECT floor(least(spectral_centroid, ?) / ?) * ? AS bin_start, count(*) AS count FROM features"
        f" WHERE spectral_centroid > 0 AND {scope} GROUP BY bin_start ORDER BY bin_start",
        [ceiling_hz - 1e-6, width_hz, width_hz, *scoped],
    )


DURATION_EDGES = [0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600]


def duration_histogram(db: Database, *, within: Within = ALL) -> pd.DataFrame:
    """Tracks per duration band (one-shots to full tracks): columns band, count, in band order."""
    scope, scoped = within("id")
    import pandas as pd

    labels = [f"{_short(lo)}–{_short(hi)}" for lo, hi in zip(DURATION_EDGES, DURATION_EDGES[1:])]
    labels.append(f"{_short(DURATION_EDGES[-1])}+")
    counts = db.frame(
        "summarise durations",
        "SELECT len(list_filter(?::DOUBLE[], x -> x <= duration)) - 1 AS band, count(*) AS count"
        f" FROM tracks WHERE {scope} GROUP BY band",
        [DURATION_EDGES, *scoped],
    )
    by_band = dict(zip(counts["band"].astype(int), counts["count"].astype(int)))
    return pd.DataFrame({"band": labels, "count": [by_band.get(i, 0) for i in range(len(labels))]})


def loudness_histogram(db: Database, *, width_db: float = LOUDNESS_BIN_DB, within: Within = ALL) -> pd.DataFrame:
    """Tracks per RMS level bin in dBFS (20·log10 of the mean RMS); silence is left out."""
    scope, scoped = within("track_id")
    return db.frame(
        "summarise loudness",
        "SELECT floor(20 * log10(rms_energy) / ?) * ? AS bin_start, count(*) AS count FROM features"
        f" WHERE rms_energy > 1e-6 AND {scope} GROUP BY bin_start ORDER BY bin_start",
        [width_db, width_db, *scoped],
    )


def tempo_vs_centroid(db: Database, *, within: Within = ALL) -> tuple[str, pd.DataFrame]:
    """("points", one row per track with filename) for small libraries, else ("density", binned counts)."""
    scope, scoped = within("f.track_id")
    where, params = f"f.tempo IS NOT NULL AND {scope}", scoped
    total = db.frame("count tracks", f"SELECT count(*) AS n FROM features f WHERE {where}", params)["n"][0]
    if total <= SCATTER_POINTS:
        return "points", db.frame(
            "read tempo and centroid",
            "SELECT t.filename, f.tempo, f.spectral_centroid FROM features f JOIN tracks t ON t.id = f.track_id"
            f" WHERE {where} ORDER BY t.filename", params,
        )
    return "density", db.frame(
        "bin tempo against centroid",
        "SELECT floor(tempo / ?) * ? AS tempo, floor(least(spectral_centroid, ?) / ?) * ? AS spectral_centroid,"
        f" count(*) AS count FROM features f WHERE {where} GROUP BY ALL",
        [TEMPO_BIN_BPM, TEMPO_BIN_BPM, CENTROID_CEILING_HZ - 1e-6, CENTROID_BIN_HZ, CENTROID_BIN_HZ, *params],
    )


NOT_ANALYSED = "not analysed"


def kind_counts(db: Database, *, within: Within = ALL) -> pd.DataFrame:
    """Tracks per kind: columns kind, count; every kind in KINDS order (0 when absent), then
    NOT_ANALYSED for tracks without a description, when there are any."""
    scope, scoped = within("t.id")
    import pandas as pd

    counts = db.frame(
        "count kinds",
        "SELECT d.kind, count(*) AS count FROM tracks t LEFT JOIN descriptions d ON d.track_id = t.id"
        f" WHERE {scope} GROUP BY d.kind", scoped,
    )
    by_kind = {kind: int(n) for kind, n in zip(counts["kind"], counts["count"]) if isinstance(kind, str)}
    kinds = list(vocabulary.KINDS)
    # Kinds a later version no longer has are counted, not dropped.
    kinds += sorted(set(by_kind) - set(kinds))
    rows = [(kind, by_kind.get(kind, 0)) for kind in kinds]
    unanalysed = int(counts.loc[counts["kind"].isna(), "count"].sum())
    if unanalysed:
        rows.append((NOT_ANALYSED, unanalysed))
    return pd.DataFrame(rows, columns=["kind", "count"])


def camelot_order() -> list[tuple[str, str]]:
    """The 24 keys round the Camelot wheel (a fifth per step): 1A, 1B, 2A, ... 12B, each minor
    beside its relative major."""
    def position(key: tuple[str, str]) -> tuple[int, str]:
        code = camelot(*key)
        return int(code[:-1]), code[-1]

    return sorted(((tonic, mode) for tonic in TONICS for mode in MODES), key=position)


def key_counts(db: Database, *, within: Within = ALL) -> pd.DataFrame:
    """Tracks per key: columns tonic, mode, key ("F minor"), camelot ("4A"), count; all 24 keys in
    Camelot order (0 when absent). Tracks without a key, or whose name gave only a note, are left out."""
    scope, scoped = within("track_id")
    import pandas as pd

    counts = db.frame(
        "count keys",
        "SELECT key_tonic, key_mode, count(*) AS count FROM descriptions"
        f" WHERE key_tonic IS NOT NULL AND key_mode IS NOT NULL AND {scope} GROUP BY ALL", scoped,
    )
    by_key = {(tonic, mode): int(n) for tonic, mode, n in zip(counts["key_tonic"], counts["key_mode"], counts["count"])}
    keys = camelot_order()
    return pd.DataFrame({
        "tonic": [tonic for tonic, _ in keys],
        "mode": [mode for _, mode in keys],
        "key": [key_label(tonic, mode) for tonic, mode in keys],
        "camelot": [camelot(tonic, mode) for tonic, mode in keys],
        "count": [by_key.get(key, 0) for key in keys],
    })


def category_counts(db: Database, *, within: Within = ALL) -> pd.DataFrame:
    """Tracks per best category (of the model reads show): columns category, count, most first
    (ties in vocabulary order). Tracks without categories are left out."""
    scope, scoped = within("c.track_id")
    names = list(vocabulary.NAMES)
    # A row of another vocabulary (until recomputed) has another length: Track shows it as none too.
    return db.frame(
        "count categories",
        "SELECT c.members[1] AS category, count(*) AS count FROM track_categories c"
        f" JOIN tracks t ON t.id = c.track_id WHERE c.model_id = {CATEGORY_MODEL}"
        " AND octet_length(c.scores) = ? AND list_contains(?::VARCHAR[], c.members[1])"
        f" AND {scope}"
        " GROUP BY category ORDER BY count DESC, list_position(?::VARCHAR[], category)",
        [4 * len(names), names, *scoped, names],
    )


def distributions(db: Database, *, within: Within = ALL) -> dict | None:
    """Every distribution Analytics draws, or None for an empty library (or selection): frames ``tempo``,
    ``centroid``, ``duration``, ``loudness`` and ``scatter`` with ``scatter_kind`` ("points" or
    "density"), the bin widths the histograms were counted in, and what the samples are:
    ``kinds``, ``keys`` and ``categories``."""
    duration = duration_histogram(db, within=within)
    if duration["count"].sum() == 0:
        return None
    scatter_kind, scatter = tempo_vs_centroid(db, within=within)
    return {"tempo": tempo_histogram(db, within=within), "centroid": centroid_histogram(db, within=within),
            "duration": duration, "loudness": loudness_histogram(db, within=within), "scatter": scatter,
            "scatter_kind": scatter_kind, "tempo_bin_bpm": TEMPO_BIN_BPM, "centroid_bin_hz": CENTROID_BIN_HZ,
            "loudness_bin_db": LOUDNESS_BIN_DB, "kinds": kind_counts(db, within=within),
            "keys": key_counts(db, within=within), "categories": category_counts(db, within=within)}


def _short(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"
