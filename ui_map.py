"""The dashboard's sound map figure (Library.sound_map): every track a point, one WebGL trace per colour.

Kept apart from ui.py, like ui_waveform.py: plotly is imported when a figure is built. Built for 100k
points: the columns go to plotly as numpy arrays, grouped by one stable sort, with no loop over points in
Python (bench/bench_map_draw.py times it). SVG scatter traces make a DOM node per point; Scattergl draws
them all on one canvas.

On a page::

    figure, rows = map_figure(frame, colour="category")
    event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points", "lasso", "box"),
                            config=MAP_CONFIG)
    ids = selected_ids(event.selection.points, rows, frame)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.library import CATEGORIES, KINDS

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

# Passed to st.plotly_chart: the wheel zooms (the drag lassos), no plotly logo, and no "autoscale" button
# (the same as reset here: the map always spans [-1, 1]).
MAP_CONFIG = {"scrollZoom": True, "displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d"]}
# The colour choices: the column and its values in vocabulary order, so a category keeps its colour
# whatever the filters leave on the map.
COLOUR_BY = {"category": CATEGORIES, "kind": KINDS}
UNSET = {"category": "no category", "kind": "not analysed"}
UNSET_COLOUR = "rgba(140, 140, 140, 0.45)"
# Marker diameter in pixels by map size: at 100k points a bigger one turns the dense middle into one blot, and
# at a few dozen a small one is hard to see, and to click.
MARKER_SIZES = ((1_000, 8), (10_000, 6), (None, 4))


def palette(count: int) -> list[str]:
    import plotly.colors

    colours = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24  # 34: one each, categories too
    return [colours[i % len(colours)] for i in range(count)]


def map_figure(frame: pd.DataFrame, *, colour: str = "category", height: int = 640) -> tuple[go.Figure, list]:
    """The map of ``frame`` (Library.sound_map's columns) coloured by ``colour`` ("category" or "kind"):
    the figure, and per trace the frame rows (numpy positions) its points are, in order, which turns a
    selection's (curve, point) numbers back into tracks. Tracks without a value are drawn first, grey,
    under the rest; then one trace per value present, in vocabulary order."""
    import pandas as pd
    import plotly.graph_objects as go

    names = COLOUR_BY[colour]
    codes = pd.Categorical(frame[colour], categories=names).codes  # -1: no value (or one outside the vocabulary)
    order = np.argsort(codes, kind="stable")
    present, starts = np.unique(codes[order], return_index=True)
    bounds = np.append(starts, len(order))
    hover = (frame["filename"] + "<br>" + frame["kind"].fillna(UNSET["kind"]) + " · "
             + frame["category"].fillna(UNSET["category"]) + " · " + frame["key"].fillna("no key")).to_numpy()
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    colours = palette(len(names))
    size = next(size for most, size in MARKER_SIZES if most is None or len(frame) <= most)
    figure, rows = go.Figure(), []
    for code, start, end in zip(present.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
        members = order[start:end]
        rows.append(members)
        figure.add_trace(go.Scattergl(
            x=x[members], y=y[members], mode="markers", name=UNSET[colour] if code < 0 else names[code],
            hovertext=hover[members], hovertemplate="%{hovertext}<extra></extra>",
            marker={"size": size, "color": UNSET_COLOUR if code < 0 else colours[code], "opacity": 0.85}))
    axis = {"visible": False, "range": [-1.05, 1.05]}
    # No dragmode: st.plotly_chart's selection makes it "pan" (clicking a point selects it), and a click selects
    # nothing while the lasso or box is the drag; the chart's toolbar switches between them.
    figure.update_layout(
        height=height, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis=axis, yaxis={**axis, "scaleanchor": "x"},  # one unit is as long across as up: distances mean alike
        legend={"itemsizing": "constant", "title": {"text": colour}},
        uirevision="sound-map",  # zoom and legend choices survive a rerun
    )
    return figure, rows


def selected_ids(points: list[dict], rows: list, frame: pd.DataFrame) -> list[str]:
    """The track ids of a chart selection's ``points`` (each with curve_number and point_index), in the
    order given, once each; points outside ``rows`` (a figure that has changed since) are left out."""
    ids = frame["id"].to_numpy()
    chosen = []
    for point in points:
        curve, index = point.get("curve_number"), point.get("point_index")
        if curve is not None and index is not None and 0 <= curve < len(rows) and 0 <= index < len(rows[curve]):
            chosen.append(ids[rows[curve][index]])
    return list(dict.fromkeys(chosen))
