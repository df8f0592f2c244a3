"""Search: by prompt, by example clip, or "more like this"."""

from functools import partial

import streamlit as st

import ui
from engine.errors import InputError
from engine.library import DEFAULT_BUT_WEIGHT, Filters

ui.require_login()
st.title("Search")
library = ui.library()
st.session_state.setdefault("like", None)

prompt_tab, example_tab = st.tabs(["Describe it", "Play an example"])
with prompt_tab:
    prompt = st.text_input("Prompt", placeholder="punchy 808 kick, warm analog pad, dusty vinyl drum break")
with example_tab:
    example = st.file_uploader("Example clip", type=[e.lstrip(".") for e in library.settings.allowed_extensions])
    recording = st.audio_input("...or record one")

with st.expander("Filters"):
    left, right = st.columns(2)
    use_duration = left.checkbox("Duration (s)")
    duration = left.slider("Duration range", 0.0, 600.0, (0.0, 30.0), step=0.5, disabled=not use_duration,
                           label_visibility="collapsed")
    use_tempo = right.checkbox("Tempo (BPM)")
    tempo = right.slider("Tempo range", 40, 240, (80, 140), disabled=not use_tempo, label_visibility="collapsed")
    formats = left.multiselect("Formats", ["wav", "aiff", "flac", "mp3", "ogg", "opus", "m4a"])
    segments = right.toggle("Rank by best 10 s segment")
    limit = right.number_input("Results", 1, 200, 20)
    described = ui.description_filters()
    kept = ui.kept_filters()

try:
    filters = Filters(
        min_duration=duration[0] if use_duration else None, max_duration=duration[1] if use_duration else None,
        min_tempo=tempo[0] if use_tempo else None, max_tempo=tempo[1] if use_tempo else None,
        formats=tuple(formats), **described, **kept,
    )
except InputError as error:  # the filters stay on screen, to be changed
    ui.show_error(error)
    st.stop()
# One search, chosen by what was given: a track to match, an example clip, or a prompt.
if st.session_state.like:
    st.info("Showing tracks like the one you picked.")
    but, weight, clear = st.columns([4, 2, 1], vertical_alignment="bottom")
    modifier = but.text_input("...but", placeholder="darker, with reverb, shorter attack",
                              help="Turns the search towards this description.")
    strength = weight.slider("How much", 0.0, 2.0, DEFAULT_BUT_WEIGHT, step=0.1,
                             help="0: the track alone; 1: halfway between the track and the description.")
    if clear.button("Clear"):
        st.session_state.like = None
        st.rerun()
    search = partial(library.search_like, st.session_state.like, but=modifier, weight=strength)
    described = f"this track, but {modifier.strip()}" if modifier.strip() else "this track"
elif recording is not None:
    search, described = partial(library.search_audio, data=recording.getvalue(), name="recording.wav"), "this example"
elif example is not None:
    search, described = partial(library.search_audio, data=example.getvalue(), name=example.name), "this example"
elif prompt.strip():
    search, described = partial(library.search_text, prompt), f"“{prompt}”"
else:
    st.caption("Type a prompt, drop an example clip or record one.")
    st.stop()

with st.spinner("Searching..."):
    hits = search(filters=filters, limit=int(limit), segments=segments)
pending = library.stats()["pending_embeddings"] if not hits else 0

st.caption(f"{len(hits)} results for {described}")
if hits:
    ui.downloads(hits, name="search", key="hits")
if not hits:
    st.info("No matches." + (f" {pending:,} tracks are still waiting for embeddings." if pending else ""))


def start_playing(track_id: str) -> None:
    st.session_state.playing, st.session_state.play_now = track_id, True


known_tags = [tag for tag, _ in library.tags()]  # the tag boxes' choices, read once for every hit


# One player at a time, made when asked for: Streamlit reads a player's whole file into memory
# (twenty one-minute WAVs took 0.17 s and 212 MB on every search), and two previews at once are noise.
for hit in hits:
    with st.container(border=True):
        head, play, more = st.columns([3, 3, 1.5])
        tempo_text = f"{hit.tempo:.1f} BPM" if hit.tempo else "no pulse"
        what = ui.describe(hit)
        head.markdown(f"**{hit.rank}. {hit.filename}**  \nscore {hit.score:.3f} · "
                      f"{ui.format_duration(hit.duration)} · {tempo_text} · {hit.spectral_centroid or 0:.0f} Hz"
                      + (f"  \n{what}" if what else ""))
        with play:
            if st.session_state.get("playing") == hit.id:
                # Starts by itself right after Play, not again on every later rerun.
                ui.play(hit, start=hit.segment_start, autoplay=st.session_state.pop("play_now", False))
            else:
                start = int(hit.segment_start or 0)
                where = f" from {start // 60}:{start % 60:02d}" if start else ""
                st.button(f"Play{where}", key=f"play-{hit.id}", icon=":material/play_arrow:", on_click=start_playing,
                          args=(hit.id,), help="Plays the best-matching 10 s segment onwards." if where else None)
        if more.button("More like this", key=f"like-{hit.id}"):
            st.session_state.like = hit.id
            st.rerun()
        ui.draw_waveform(hit, segment=(hit.segment_start, hit.segment_end) if hit.segment_start is not None else None)
        keep, download = st.columns([12, 1], vertical_alignment="center")
        with keep:
            ui.keep_controls(hit, key=hit.id, known=known_tags)
        with download:
            ui.download_file(hit, key=hit.id)
