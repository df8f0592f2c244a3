"""Duplicates: the same sound stored more than once. Near-duplicates (another format, level, rate or trim) and
exact copies (the same bytes in two places); remove a copy from the library, or send one file to the trash."""

import hashlib

import streamlit as st

import ui
from engine.errors import EngineError, NotFoundError
from engine.library import DUPLICATE_THRESHOLD

GROUPS_PER_PAGE = 10

ui.require_login()
st.title("Duplicates")
library = ui.library()
st.caption("Nothing here deletes a file. **Remove from the library** forgets a track and leaves its files where "
           "they are; **Move this file to the trash** sends that one file to the system trash, only when you "
           "confirm it, and you can restore it from there.")


def start_playing(track_id: str) -> None:
    st.session_state.playing, st.session_state.play_now = track_id, True


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def details(track) -> str:
    channels = {1: "mono", 2: "stereo"}.get(track.channels, f"{track.channels} channels")
    return (f"{track.format} · {track.sample_rate / 1000:g} kHz · {channels} · {size_text(track.file_size)} · "
            f"{ui.format_duration(track.duration)}")


def current(track_id: str):
    """The track as it is now, or None once it has left the library: groups are kept from the search, and
    a removal or a trashed last file since must not show a track that is gone."""
    try:
        return library.track(track_id)
    except NotFoundError:
        return None


def player(track, *, key: str) -> None:
    # One player at a time, made when asked for (see the Search page).
    if st.session_state.get("playing") == track.id:
        ui.play(track, autoplay=st.session_state.pop("play_now", False))
    else:
        st.button("Play", key=f"play-{key}", icon=":material/play_arrow:", on_click=start_playing, args=(track.id,))


def files(track, *, key: str) -> None:
    """Every place the track's audio is, each a file that can go to the trash once its box is ticked."""
    # A managed track's first location is the library's own copy: it goes with the track, never to the trash.
    own = track.locations[:1] if track.storage == "managed" else ()
    for path in own:
        st.caption(f"`{path}` (the library's own copy)")
    for path in track.locations[len(own):]:
        where = f"{key}-{hashlib.sha1(path.encode()).hexdigest()[:12]}"
        name, confirm, move = st.columns([4, 2, 2], vertical_alignment="center")
        name.caption(f"`{path}`")
        sure = confirm.checkbox("Yes, move it to the trash", key=f"trash-confirm-{where}",
                                help="Tick to allow moving this one file to the system trash.")
        if move.button("Move this file to the trash", key=f"trash-{where}", icon=":material/delete:",
                       disabled=not sure, help="To the system trash, where you can restore it; nothing is deleted."):
            try:
                left = library.trash_file(track.id, path)
            except EngineError as error:  # e.g. moved or deleted outside meanwhile: the page carries on
                ui.show_error(error)
            else:
                st.toast(f"Moved {path} to the trash." + ("" if left else f" {track.filename} had no other file, "
                                                                           "so it left the library."))
                st.rerun()


def paged(items: list, *, key: str) -> tuple[int, list]:
    """A page of ``items`` (a thousand groups are a thousand containers to draw) and the number of its first."""
    pages = (len(items) - 1) // GROUPS_PER_PAGE + 1
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"page-{key}") if pages > 1 else 1
    first = (page - 1) * GROUPS_PER_PAGE
    return first + 1, items[first:first + GROUPS_PER_PAGE]


def near_duplicates() -> None:
    threshold = st.slider("Similarity threshold", 0.90, 1.00, DUPLICATE_THRESHOLD, step=0.005, format="%.3f",
                          help="How alike two tracks' embeddings must be (cosine) to count as copies; their "
                               "durations must agree too. Lower finds more, and more that are only similar.")
    if st.button("Find duplicates", type="primary", icon=":material/content_copy:"):
        # The search compares every track with every other (about two minutes per 100k tracks), so it runs when
        # asked and its result is kept for the revision it saw; removals here do not start it again.
        st.session_state.duplicates_revision = library.revision
    searched = st.session_state.get("duplicates_revision")
    if searched is None:
        st.info("Press **Find duplicates** to compare every track with every other: about two minutes per "
                "100,000 tracks.")
        return
    try:
        with st.spinner("Comparing every track with every other..."):
            groups = ui.duplicate_groups(threshold, revision=searched)
    except EngineError as error:  # e.g. the model is not available: the exact copies still show
        ui.show_error(error)
        return
    if library.revision != searched:
        st.caption("The library has changed since this search: press **Find duplicates** again to include "
                   "new tracks.")
    if not groups:
        st.info(f"No near-duplicates at {threshold:.3f}: no two tracks sound this alike.")
        return
    st.caption(f"{len(groups):,} groups of near-duplicates at {threshold:.3f}, the most copies first. "
               "Each group's first track is its most typical copy.")
    first, shown = paged(groups, key="near")
    for number, found in enumerate(shown, first):
        members = [track for track in map(current, (t.id for t in found.tracks)) if track is not None]
        with st.container(border=True):
            lowest = min(score for *_, score in found.pairs)
            st.markdown(f"**Group {number}** · {len(members)} tracks · lowest similarity {lowest:.3f}")
            if len(members) < 2:
                st.caption("Settled: " + (f"only {members[0].filename} is left in the library." if members else
                                          "none of these tracks is in the library any more."))
                continue
            for track in members:
                scores = [score for a, b, score in found.pairs if track.id in (a, b)]
                about, actions = st.columns([4, 2], vertical_alignment="center")
                about.markdown(f"**{track.filename}**  \n{details(track)} · lowest match {min(scores):.3f}")
                with actions:
                    player(track, key=f"near-{track.id}")
                    st.checkbox("Remove from the library", key=f"remove-{number}-{track.id}",
                                help="Forgets the track; its files stay where they are.")
                files(track, key=f"near-{track.id}")
            chosen = [t for t in members if st.session_state.get(f"remove-{number}-{t.id}")]
            if st.button("Remove the chosen from the library", key=f"remove-group-{number}", disabled=not chosen,
                         help="Only the library's rows (and its own copy of an upload); no file of yours is "
                              "touched."):
                try:
                    for track in chosen:
                        library.delete(track.id)
                except EngineError as error:  # gone meanwhile: the rest of the page stays usable
                    ui.show_error(error)
                else:
                    st.toast(f"Removed {len(chosen)} from the library; the files are where they were.")
                    st.rerun()


def exact_copies() -> None:
    copies = library.copies()
    if not copies:
        st.info("No exact copies: no file's bytes are in two places in your folders.")
        return
    st.caption(f"{len(copies):,} " + ("track whose" if len(copies) == 1 else "tracks whose") + " same bytes are in "
               "more than one place. The library keeps one track for them; each place is a file on disk.")
    for track in paged(copies, key="copies")[1]:
        with st.container(border=True):
            about, play = st.columns([4, 2], vertical_alignment="center")
            about.markdown(f"**{track.filename}**  \n{details(track)} · the same bytes in "
                           f"{len(track.locations)} places")
            with play:
                player(track, key=f"copy-{track.id}")
            files(track, key=f"copy-{track.id}")


near_tab, copies_tab = st.tabs(["Near-duplicates", "Exact copies"])
with near_tab:
    near_duplicates()
with copies_tab:
    exact_copies()
