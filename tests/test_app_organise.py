"""AppTests for keeping sounds: stars, tags and "...but" on Search, the kept filters on Library, and the
Collections page, on a temporary library with the tiny offline CLAP model."""

from tests.test_app import app, populate  # noqa: F401 (app is a fixture)


def hit_cards(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**")]


def test_search_hits_can_be_starred_tagged_downloaded_and_turned(app, audio_dir):  # noqa: F811
    library = populate(audio_dir)
    at = app("search")
    at.text_input[0].input("a clean sine tone").run()
    assert not at.exception and len(hit_cards(at)) == 6
    assert len(at.get("download_button")) == 3 + 6  # CSV, M3U, zip of the hits, and one per hit
    first = library.search_text("a clean sine tone", limit=1)[0]
    star = next(b for b in at.button if b.key == f"star-{first.id}")
    star.click().run()
    assert not at.exception and library.track(first.id).favourite
    tags = next(m for m in at.multiselect if m.key == f"tags-{first.id}")
    tags.set_value(["Bright", "keeper"]).run()
    assert not at.exception and library.track(first.id).tags == ("bright", "keeper")
    assert next(m for m in at.multiselect if m.key == f"tags-{first.id}").value == ["bright", "keeper"]
    # The kept filters: favourites only leaves the starred hit.
    next(t for t in at.toggle if t.label == "Favourites only").set_value(True).run()
    assert not at.exception and len(hit_cards(at)) == 1 and first.filename in hit_cards(at)[0]
    next(t for t in at.toggle if t.label == "Favourites only").set_value(False).run()
    next(m for m in at.multiselect if m.label == "Tags").set_value(["keeper"]).run()
    assert len(hit_cards(at)) == 1
    next(m for m in at.multiselect if m.label == "Tags").set_value([]).run()
    # "More like this, but ...": the description and its weight turn the search.
    next(b for b in at.button if b.label == "More like this").click().run()
    but = next(t for t in at.text_input if t.label == "...but")
    but.input("noise").run()
    assert not at.exception and any("results for this track, but noise" in c.value for c in at.caption)


def test_library_filters_on_what_was_kept(app, audio_dir):  # noqa: F811
    library = populate(audio_dir)
    tone = next(t for t in library.tracks(limit=10) if t.filename == "sine440.wav")
    library.set_favourite(tone.id)
    library.tag(tone.id, add=["pure"])
    library.create_collection("Tests")
    library.add_to_collection("Tests", [tone.id])
    at = app("library")
    assert not at.exception and len(at.dataframe[0].value) == 6
    table = at.dataframe[0].value
    assert list(table.loc[table["filename"] == "sine440.wav", "tags"]) == ["pure"]
    assert table.loc[table["filename"] == "sine440.wav", "favourite"].item()
    next(t for t in at.toggle if t.label == "Favourites only").set_value(True).run()
    assert list(at.dataframe[0].value["filename"]) == ["sine440.wav"]
    next(t for t in at.toggle if t.label == "Favourites only").set_value(False).run()
    next(s for s in at.selectbox if s.label == "Collection").select("Tests").run()
    assert list(at.dataframe[0].value["filename"]) == ["sine440.wav"]


def test_collections_page(app, audio_dir):  # noqa: F811
    at = app("collections")
    assert not at.exception and at.title[0].value == "Collections"
    assert "No collections yet" in at.info[0].value
    library = populate(audio_dir)
    at.text_input[0].input("Set for Friday")
    at.button[0].click().run()  # the form's Create
    assert not at.exception and [c["name"] for c in library.collections()] == ["Set for Friday"]
    assert "Empty" in " ".join(c.value for c in at.caption)
    tracks = library.tracks(limit=3)
    library.add_to_collection("set for friday", [t.id for t in tracks])
    at.run()
    cards = [m.value for m in at.markdown if m.value.startswith("**")]
    assert [c.split("**")[1] for c in cards] == [f"{n}. {t.filename}" for n, t in enumerate(tracks, 1)]
    assert len(at.get("download_button")) == 3
    next(b for b in at.button if b.key == f"out-{tracks[0].id}").click().run()
    assert not at.exception and [t.id for t in library.collection("Set for Friday")[1]] == [t.id for t in tracks[1:]]
    delete = next(b for b in at.button if b.label == "Delete collection")
    assert delete.disabled
    next(c for c in at.checkbox if c.label.startswith("Yes, delete")).check().run()
    next(b for b in at.button if b.label == "Delete collection").click().run()
    assert not at.exception and library.collections() == [] and library.count() == 6
