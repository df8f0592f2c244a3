"""The dashboard's drawing of a waveform overview (engine.waveform): a small plotly figure.

Kept apart from ui.py so the pages can draw overviews without the rest of the dashboard's
helpers; plotly is imported when a figure is built, not when this module is (importing it
takes a good part of a second).

On a page::

    waveform = lib.waveform(hit.id)
    if waveform is not None:
        segment = (hit.segment_start, hit.segment_end) if hit.segment_start is not None else None
        st.plotly_chart(waveform_figure(waveform, segment=segment), width="stretch", config=WAVEFORM_CONFIG)
"""

from __future__ import annotations

import numpy as np

from engine.waveform import FULL_SCALE, Waveform

# Passed to st.plotly_chart: an overview is a picture, not a chart to zoom, pan or save, so no
# toolbar, and no hover or drag to catch a scroll on the results list.
WAVEFORM_CONFIG = {"displayModeBar": False, "staticPlot": True}
BAND_COLOUR = "rgba(99, 110, 250, 0.9)"  # plotly's first colour, as the other charts use
SEGMENT_COLOUR = "rgba(255, 161, 90, 0.35)"


def waveform_figure(waveform: Waveform, *, segment: tuple[float, float] | None = None, height: int = 60):
    """A plotly figure of ``waveform``: the band between each column's minimum and maximum over
    0 to ``waveform.duration`` seconds, with ``segment`` (start, end in seconds; the best-matching
    window of a search hit) shaded behind it, clipped to the drawn span. No axes, grid, legend or
    margins; ``height`` in pixels, the width is the container's."""
    import plotly.graph_objects as go

    duration = max(float(waveform.duration), 0.0)
    columns = len(waveform.peaks)
    figure = go.Figure()
    if columns:
        centres = (np.arange(columns) + 0.5) * (duration / columns)
        low, high = waveform.peaks[:, 0] / FULL_SCALE, waveform.peaks[:, 1] / FULL_SCALE
        # One closed polygon, along the maxima and back along the minima: one trace to draw
        # instead of two with fill="tonexty".
        figure.add_trace(go.Scatter(x=np.concatenate([centres, centres[::-1]]), y=np.concatenate([high, low[::-1]]),
                                    fill="toself", mode="lines",
                                    line={"width": 0.5, "color": BAND_COLOUR}, fillcolor=BAND_COLOUR,
                                    hoverinfo="skip", showlegend=False))
    span = duration or 1.0  # a zero-length track still gets a drawable (empty) range
    if segment is not None and segment[0] is not None and segment[1] is not None:
        # A search window is 10 s even on a shorter track: shade only what is drawn.
        start, end = max(0.0, float(segment[0])), min(span, float(segment[1]))
        if end > start:
            figure.add_shape(type="rect", x0=start, x1=end, y0=-1, y1=1, xref="x", yref="y", layer="below",
                             line={"width": 0}, fillcolor=SEGMENT_COLOUR)
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False,
                         paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", hovermode=False,
                         dragmode=False)
    figure.update_xaxes(visible=False, showgrid=False, zeroline=False, range=[0, span], fixedrange=True)
    figure.update_yaxes(visible=False, showgrid=False, zeroline=False, range=[-1, 1], fixedrange=True)
    return figure


def waveform_svg(waveform: Waveform, *, segment: tuple[float, float] | None = None, height: int = 44) -> str:
    """The same picture as ``waveform_figure``, as a small inline SVG: a results page draws twenty of
    these, where twenty plotly charts would each load a chart component in the browser."""
    width = 1000  # viewBox units; the SVG stretches to its container
    peaks = np.asarray(waveform.peaks, dtype=np.float64) / FULL_SCALE
    duration = max(float(waveform.duration), 1e-9)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" preserveAspectRatio="none" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="waveform">']
    if segment is not None:
        start, end = (min(max(t / duration, 0.0), 1.0) * width for t in segment)
        if end > start:
            parts.append(f'<rect x="{start:.1f}" y="0" width="{end - start:.1f}" height="{height}" '
                         f'fill="{SEGMENT_COLOUR}"/>')
    if len(peaks):
        x = (np.arange(len(peaks)) + 0.5) * (width / len(peaks))
        middle = height / 2
        top = middle - np.maximum(peaks[:, 1], 0) * middle
        bottom = middle - np.minimum(peaks[:, 0], 0) * middle
        bottom = np.maximum(bottom, top + 0.6)  # silence still draws a hairline
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(np.concatenate([x, x[::-1]]),
                                                            np.concatenate([top, bottom[::-1]])))
        parts.append(f'<polygon points="{points}" fill="{BAND_COLOUR}"/>')
    parts.append("</svg>")
    return "".join(parts)
