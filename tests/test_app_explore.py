"""AppTests of the exploring pages, Duplicates and Map, on a temporary library with the tiny offline CLAP model
(the setup of tests/test_app.py)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.fixtures_audio import sine, write_audio
from tests.test_app import _values, app  # noqa: F401 (app is a fixture)
from tests.test_duplicates import write_reencodings


@pytest.fixture
def page(app, private_trash):  # noqa: F811 (app is tests.test_app's fixture)
    """start(name): an AppTest of pages/<name>.py inside app.py's navigation; the system trash in the test's
    folder."""
    return app


def button(at, label: str):
    [found] = [b for b in at.button if b.label == label]
    return found


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def trash_key(track_id: str, path: str, *, where: str) -> str:
    return f"{where}-{track_id}-{hashlib.sha1(path.encode()).hexdigest()[:12]}"


def pack(tmp_path) -> tuple:
    """write_reencodings' chord forms and copies, added as a watched-off folder; the library and the folder."""
    import ui

    root = tmp_path / "pack"
    root.mkdir()
    write_reencodings(root)
    library = ui.library()
    library.add_folder(root, watch=False)
    return library, root


# -- Duplicates ---------------------------------------------------------------------------------------------------

def test_duplicates_finds_the_planted_group_and_removing_leaves_the_file(page, tmp_path):
    library, root = pack(tmp_path)
    at = page("duplicates")
    assert not at.exception and at.title[0].value == "Duplicates"
    assert "Nothing here deletes a file" in at.caption[0].value
    assert "Press **Find duplicates**" in at.info[0].value  # nothing compared until asked
    button(at, "Find duplicates").click().run()
    assert not at.exception
    shown = texts(at)
    assert "**Group 1**" in shown and "**Group 2**" not in shown
    for name in ("chord.wav", "chord.flac", "chord_22k.wav", "chord_-6dB.wav", "chord_lead50ms.wav"):
        assert f"**{name}**" in shown  # the tiny model may leave the mp3 out (tests/test_duplicates.py)
    assert "lowest similarity 0.9" in shown and "44.1 kHz" in shown

    remove = button(at, "Remove the chosen from the library")
    assert remove.disabled  # nothing chosen yet
    [quiet] = library.tracks(name="chord_-6dB")
    at.checkbox(key=f"remove-1-{quiet.id}").check().run()
    button(at, "Remove the chosen from the library").click().run()
    assert not at.exception
    assert not library.tracks(name="chord_-6dB")  # gone from the library...
    assert (root / "chord_-6dB.wav").is_file()  # ...and its file where it was
    assert not (tmp_path / "xdg" / "Trash").exists()
    shown = texts(at)
    assert "**chord_-6dB.wav**" not in shown and "**chord.wav**" in shown  # the group, without it


def test_a_file_goes_to_the_trash_only_after_its_box_is_ticked(page, tmp_path):
    library, root = pack(tmp_path)
    at = page("duplicates")
    [copy] = library.copies()  # the tone's same bytes at two paths
    again = str(root / "Copies" / "tone again.wav")
    key = trash_key(copy.id, again, where="copy")
    move = at.button(key=f"trash-{key}")
    assert move.label == "Move this file to the trash" and move.disabled
    at.checkbox(key=f"trash-confirm-{key}").check().run()
    assert not at.exception and not at.button(key=f"trash-{key}").disabled
    at.button(key=f"trash-{key}").click().run()
    assert not at.exception
    assert not Path(again).exists() and (root / "tone.wav").is_file()
    assert [p.name for p in (tmp_path / "xdg" / "Trash" / "files").iterdir()] == ["tone again.wav"]
    assert library.track(copy.id).locations == (str(root / "tone.wav"),)  # the library followed
    assert "No exact copies" in " ".join(i.value for i in at.info)


def test_duplicates_empty_states(page, tmp_path):
    at = page("duplicates")
    button(at, "Find duplicates").click().run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "No near-duplicates" in infos and "No exact copies" in infos


# -- Map -----------------------------------------------------------------------------------------------------------

def wait_for_map(timeout: float = 90.0) -> None:
    import ui

    deadline = time.monotonic() + timeout
    while ui.library().sound_map_state()["status"] == "running":
        assert time.monotonic() < deadline, "the map took too long"
        time.sleep(0.1)


def points(at) -> list[tuple[str, int]]:
    """The map's traces as (name, number of points)."""
    [chart] = at.get("plotly_chart")
    return [(trace["name"], len(_values(trace["x"]))) for trace in json.loads(chart.proto.spec)["data"]]


def test_map_of_an_empty_library(page):
    at = page("map")
    assert not at.exception and at.title[0].value == "Map"
    wait_for_map()
    at.run()
    assert not at.exception and not at.get("plotly_chart")
    assert "Nothing to map yet" in at.info[0].value


@pytest.mark.parametrize("count", [1, 2, 3])
def test_map_draws_once_made(page, tmp_path, count):
    import ui

    paths = [write_audio(tmp_path / "in" / f"tone{i}.wav", sine(220 * (i + 1), 1.0), 44_100) for i in range(count)]
    library = ui.library()
    assert [r.status for r in library.ingest(paths)] == ["added"] * count
    at = page("map")
    assert not at.exception
    wait_for_map()  # made in the background: the page polls; here the test waits through the library
    at.run()
    assert not at.exception and library.sound_map_state()["status"] == "ready"
    assert sum(n for _, n in points(at)) == count
    total = "1 track." if count == 1 else f"{count} tracks."
    assert total in texts(at)
    [chart] = at.get("plotly_chart")
    assert json.loads(chart.proto.spec)["data"][0]["type"] == "scattergl"

    # Coloured by kind instead: the same points, in the kinds' traces.
    at.button_group[0].set_value("kind").run()
    assert not at.exception
    names = {name for name, _ in points(at)}
    assert names <= {"one-shot", "loop", "long", "not analysed"} and sum(n for _, n in points(at)) == count

    # The kept filters apply to the map: no favourite yet, then one.
    [favourites] = [t for t in at.toggle if t.label == "Favourites only"]
    favourites.set_value(True).run()
    assert not at.exception and "No tracks match" in at.info[0].value
    library.set_favourite(library.tracks()[0].id)
    at.run()
    assert sum(n for _, n in points(at)) == 1 and (total if count == 1 else f"1 of {total}") in texts(at)


def test_selection_to_track_ids():
    import numpy as np
    import pandas as pd

    from ui_map import map_figure, selected_ids

    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "x": np.float32([0, 1, -1, 0.5]),
                          "y": np.float32([0, 0, 1, -1]), "filename": ["a.wav", "b.wav", "c.wav", "d.wav"],
                          "kind": ["loop", None, "loop", "one-shot"], "category": ["pad", "kick", None, "pad"],
                          "key": [None, "C major", None, None], "duration": [1.0] * 4, "tempo": [np.nan] * 4})
    figure, rows = map_figure(frame, colour="category")
    # Grey "no category" under the rest, then the vocabulary's order (kick before pad).
    assert [trace.name for trace in figure.data] == ["no category", "kick", "pad"]
    assert [list(trace.hovertext) for trace in figure.data][2] == ["a.wav<br>loop · pad · no key",
                                                                   "d.wav<br>one-shot · pad · no key"]
    picked = [{"curve_number": 2, "point_index": 1}, {"curve_number": 0, "point_index": 0},
              {"curve_number": 2, "point_index": 1}, {"curve_number": 7, "point_index": 0}]
    assert selected_ids(picked, rows, frame) == ["d", "c"]  # once each; a stale point left out


def test_without_the_model_both_pages_say_why(page, tmp_path, monkeypatch):
    import ui

    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "nowhere"))
    library, _ = pack(tmp_path)  # imported, but nothing embedded
    at = page("duplicates")
    button(at, "Find duplicates").click().run()
    assert not at.exception
    assert "TRAUM_CLAP_MODEL" in at.error[0].value
    assert "tone" in texts(at)  # the exact copies need no model
    at = page("map")
    wait_for_map()
    at.run()
    assert not at.exception and not at.get("plotly_chart")
    assert "The map could not be made" in at.error[0].value and "TRAUM_CLAP_MODEL" in at.error[0].value
    assert ui.library().sound_map_state()["status"] == "error"
    button(at, "Try again").click().run()  # tries again (and fails the same way, without breaking the page)
    wait_for_map()
    at.run()
    assert not at.exception and "The map could not be made" in at.error[0].value
