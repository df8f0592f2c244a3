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
