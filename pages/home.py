"""Home: the library at a glance and the health of the model."""

import streamlit as st

import ui

ui.require_login()
st.title("Traum-Engine")
st.caption("Your sample library, searchable by sound.")

library = ui.library()
stats = library.stats()
model = library.model_status()

if stats["tracks"] == 0:
    st.info("Your library is empty. Add the folder that holds your samples on the **Folders** page (they are "
            "indexed where they are), or drop files on the **Upload** page.")
else:
    tracks, duration, formats, pending = st.columns(4)
    tracks.metric("Tracks", f"{stats['tracks']:,}")
    duration.metric("Total duration", ui.format_duration(stats["total_duration_s"]))
    formats.metric("Formats", len(stats["formats"]))
    waiting = stats["pending_embeddings"]
    pending.metric("Pending embeddings", "…" if waiting is None else f"{waiting:,}",
                   help="Counted once the model has loaded." if waiting is None else None)
    st.caption("By format: " + ", ".join(f"{n:,} {fmt}" for fmt, n in stats["formats"].items()))
    ui.preload_chart_library()  # so a first visit to Analytics only draws

analysing = library.reanalyse_state()["running"] or ui.warming_up(library)  # the warm-up may start one


@st.fragment(run_every=1.0 if analysing else None)
def analysis_status() -> None:
    """The background analysis of samples an older version described: live progress, then what failed."""
    state = library.reanalyse_state()
    if analysing and not (state["running"] or ui.warming_up(library)):
        st.rerun()  # the whole page: the outcome is drawn, and nothing polls any more
    if state["running"] and not state["total"]:  # still counting them
        st.progress(0.0, text="Analysing existing samples: getting ready...")
    elif state["running"]:
        st.progress(min(state["done"] / state["total"], 1.0),
                    text=f"Analysing existing samples: {state['done']:,} of {state['total']:,} "
                         "(kind, key and category; searching works meanwhile)")
    elif state["error"]:
        st.error(f"**The analysis of existing samples stopped**: {state['error']}")
    elif state["failed"]:
        failed = state["failed"]
        st.warning(f"{len(failed):,} of {state['total']:,} existing samples could not be analysed again; "
                   "they keep what they had and are tried again at the next start.")
        with st.expander("Which, and why"):
            for result in failed[:50]:
                error = result["error"] or "failed"
                st.caption(error if error.startswith(result["source"]) else f"{result['source']}: {error}")
            if len(failed) > 50:
                st.caption(f"... and {len(failed) - 50:,} more.")
    elif state["total"]:
        st.caption(f"Analysed {state['done']:,} existing samples: kind, key and category are up to date.")


analysis_status()

st.subheader("Search model")
if model["loaded"]:
    st.success(f"CLAP ready: `{model['model_id']}` on {model['device']} ({model['precision']}, "
               f"{model['dim']} dimensions, {model['backend']} backend).")
    for problem in (model["sanity"] or {}).get("problems", []):
        st.warning(f"**This model gives meaningless results.** {problem}")
elif model["error"]:
    st.warning(f"**The CLAP model is not available**: {model['error']}\n\n{model['hint'] or ''}")
else:
    where = f" on {model['device']}" if model["device"] else ""
    st.info(f"Loading CLAP `{model['model']}` ({model['backend']} backend){where}...")
st.caption(f"Library folder: `{library.settings.data_dir.resolve()}`")
