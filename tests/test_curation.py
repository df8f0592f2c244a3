"""What a person keeps: favourites, tags and collections, on a real on-disk library (fake embedder);
they follow a track through moves, reembed and export/import, filter listings and searches, and the
CLI drives them. Also "like this, but ..." and the hand-off formats (CSV, M3U, zip, folders)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import InputError, NotFoundError
from engine.handoff import COLUMNS, to_csv, to_m3u, to_zip, write_collection
from engine.library import Filters, Library
from engine.search import combined
from tests.fixtures_audio import click_track, noise_burst, sine, write_audio
from tests.fixtures_fake import FakeEmbedder

RATE = 44_100


@pytest.fixture
def pack(tmp_path) -> Path:
    root = tmp_path / "pack"
    write_audio(root / "Drums" / "kick.wav", sine(55, 0.4), RATE)
    write_audio(root / "Drums" / "hat.wav", noise_burst(0.06), RATE)
    write_audio(root / "Keys" / "tone.wav", sine(880, 2), RATE)
    write_audio(root / "Loops" / "beat.wav", click_track(120, 4), RATE)
    return root


@pytest.fixture
def ids(fake_library, pack) -> dict[str, str]:
    fake_library.add_folder(pack, watch=False)
    return {Path(t.path).stem: t.id for t in fake_library.tracks(limit=100)}


def test_favourites_tags_and_collections_on_a_track(fake_library, ids):
    kick = fake_library.set_favourite(ids["kick"][:8])
    assert kick.favourite and kick.to_dict()["favourite"] is True
    kick = fake_library.tag(ids["kick"], add=["808", "Punchy  Kick", "punchy kick"])
    assert kick.tags == ("808", "punchy kick")  # folded to lower case, spaces single, once each
    kick = fake_library.tag(ids["kick"], remove=["PUNCHY KICK", "never there"])
    assert kick.tags == ("808",)
    assert fake_library.create_collection("  Set One ") == "Set One"
    with pytest.raises(InputError, match="exists already"):
        fake_library.create_collection("set one")
    fake_library.add_to_collection("SET ONE", [ids["tone"], ids["kick"], ids["tone"]])
    fake_library.add_to_collection("set one", [ids["hat"], ids["kick"]])  # kick keeps its place
    name, tracks = fake_library.collection("set one")
    assert name == "Set One" and [t.id for t in tracks] == [ids["tone"], ids["kick"], ids["hat"]]
    assert fake_library.track(ids["kick"]).collections == ("Set One",)
    fake_library.remove_from_collection("Set One", [ids["tone"]])
    assert [t.id for t in fake_library.collection("Set One")[1]] == [ids["kick"], ids["hat"]]
    assert fake_library.collections()[0] | {"created_at": None} == {"name": "Set One", "tracks": 2,
                                                                    "created_at": None}
    assert fake_library.tags() == [("808", 1)]
    assert not fake_library.set_favourite(ids["kick"], on=False).favourite
    fake_library.delete_collection("set one")
    assert fake_library.collections() == [] and fake_library.track(ids["kick"]).collections == ()
    for bad in ("", "   ", "x" * 65, "bell\x07"):
        with pytest.raises(InputError):
            fake_library.tag(ids["kick"], add=[bad])
    with pytest.raises(NotFoundError):
        fake_library.add_to_collection("nope", [ids["kick"]])
    with pytest.raises(NotFoundError):
        fake_library.set_favourite("ffffffffffff")


def test_filters_on_what_was_kept_in_listings_and_searches(fake_library, ids):
    fake_library.set_favourite(ids["tone"])
    fake_library.tag(ids["tone"], add=["bright", "keys"])
    fake_library.tag(ids["hat"], add=["bright"])
    fake_library.create_collection("picks")
    fake_library.add_to_collection("picks", [ids["hat"], ids["beat"]])

    def listed(**kept) -> set[str]:
        return {t.id for t in fake_library.tracks(Filters(**kept), limit=100)}

    assert listed(favourite=True) == {ids["tone"]}
    assert listed(tags=("BRIGHT",)) == {ids["tone"], ids["hat"]}
    assert listed(tags=("bright", "keys")) == {ids["tone"]}  # every tag given
    assert listed(collection="Picks") == {ids["hat"], ids["beat"]}
    assert listed(collection="picks", tags=("bright",)) == {ids["hat"]}
    assert fake_library.count(Filters(tags=("nothing",))) == 0
    # A search keeps the same tracks; tagging after a search is seen by the next one.
    hits = fake_library.search_text("a 880 Hz tone", filters=Filters(tags=("bright",)), limit=10)
    assert {h.id for h in hits} == {ids["tone"], ids["hat"]} and hits[0].id == ids["tone"]
    fake_library.tag(ids["beat"], add=["bright"])
    hits = fake_library.search_text("a 880 Hz tone", filters=Filters(tags=("bright",)), limit=10)
    assert {h.id for h in hits} == {ids["tone"], ids["hat"], ids["beat"]}
    with pytest.raises(InputError):
        Filters(collection="")


def test_what_was_kept_follows_a_move_survives_reembed_and_goes_with_a_delete(fake_library, ids, pack):
    fake_library.set_favourite(ids["kick"])
    fake_library.tag(ids["kick"], add=["808"])
    fake_library.create_collection("drums")
    fake_library.add_to_collection("drums", [ids["kick"], ids["hat"]])
    (pack / "Drums" / "kick.wav").rename(pack / "Keys" / "renamed kick.wav")
    report = fake_library.sync()
    assert [m["id"] for m in report.moved] == [ids["kick"]]
    kick = fake_library.track(ids["kick"])
    assert kick.path.endswith("renamed kick.wav") and kick.favourite and kick.tags == ("808",)
    assert kick.collections == ("drums",)
    fake_library.reembed()
    assert fake_library.track(ids["kick"]).tags == ("808",)
    fake_library.delete(ids["hat"])
    assert [t.id for t in fake_library.collection("drums")[1]] == [ids["kick"]]
    assert fake_library.tags() == [("808", 1)]


def test_export_and_import_carry_what_was_kept(fake_library, ids, tmp_path, settings, fake_embedder):
    fake_library.set_favourite(ids["beat"])
    fake_library.tag(ids["beat"], add=["groove"])
    fake_library.create_collection("Loops I like")
    fake_library.add_to_collection("loops i like", [ids["beat"], ids["tone"]])
    fake_library.export(tmp_path / "backup")
    other = settings.model_copy(update={"data_dir": tmp_path / "other"})
    with Library(other, embedder_provider=lambda: fake_embedder) as restored:
        restored.restore(tmp_path / "backup")
        beat = restored.track(ids["beat"])
        assert beat.favourite and beat.tags == ("groove",) and beat.collections == ("Loops I like",)
        assert [t.id for t in restored.collection("LOOPS I LIKE")[1]] == [ids["beat"], ids["tone"]]


def test_like_this_but_moves_the_query_towards_the_prompt(fake_library, ids):
    alone = fake_library.search_like(ids["kick"], limit=3)
    assert ids["kick"] not in {h.id for h in alone}
    # The fake embedder maps "880 Hz" to that band: enough weight turns the search to the tone.
    turned = fake_library.search_like(ids["kick"], but="brighter, 880 Hz", weight=2.0, limit=3)
    assert turned[0].id == ids["tone"] and ids["kick"] not in {h.id for h in turned}
    assert [h.id for h in fake_library.search_like(ids["kick"], but="880 Hz", weight=0, limit=3)] == \
        [h.id for h in alone]
    assert [h.id for h in fake_library.search_like(ids["kick"], but="   ", limit=3)] == [h.id for h in alone]
    with pytest.raises(InputError, match="between 0 and 2"):
        fake_library.search_like(ids["kick"], but="darker", weight=3)


def test_combined_is_a_renormalised_weighted_sum():
    track, prompt = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    assert np.allclose(combined(track, prompt, weight=1.0), [2 ** -0.5, 2 ** -0.5])
    assert np.allclose(combined(track, prompt, weight=0.0), track)
    assert np.allclose(combined(track, -track, weight=1.0), -track)  # cancelled: the prompt alone
    assert np.isclose(np.linalg.norm(combined(track, prompt, weight=0.5)), 1.0)


def test_hand_off_formats_parse_back(fake_library, ids, tmp_path):
    hits = fake_library.search_text("a 880 Hz tone", limit=4)
    table = list(csv.DictReader(io.StringIO(to_csv(hits))))
    assert tuple(table[0]) == COLUMNS and [row["id"] for row in table] == [h.id for h in hits]
    assert table[0]["rank"] == "1" and float(table[0]["score"]) == pytest.approx(hits[0].score, abs=1e-6)
    assert all(Path(row["path"]).is_absolute() and Path(row["path"]).is_file() for row in table)
    playlist = to_m3u(hits).splitlines()
    assert playlist[0] == "#EXTM3U" and playlist[1].startswith("#EXTINF:")
    paths = [line for line in playlist if not line.startswith("#")]
    assert paths == [h.path for h in hits] and all(Path(p).is_file() for p in paths)
    with zipfile.ZipFile(io.BytesIO(to_zip(hits))) as archive:
        assert archive.namelist() == [f"{n} {h.filename}" for n, h in enumerate(hits, 1)]
        assert archive.read(archive.namelist()[0]) == Path(hits[0].path).read_bytes()

    fake_library.create_collection("out")
    fake_library.add_to_collection("out", [ids["tone"], ids["kick"]])
    tracks = fake_library.collection("out")[1]
    assert write_collection(tracks, tmp_path / "set.m3u")["tracks"] == 2
    assert [line for line in (tmp_path / "set.m3u").read_text().splitlines() if not line.startswith("#")] == \
        [t.locations[0] for t in tracks]
    write_collection(tracks, tmp_path / "set.csv")
    rows = list(csv.DictReader((tmp_path / "set.csv").open(newline="")))
    assert [row["rank"] for row in rows] == ["1", "2"] and rows[0]["score"] == ""
    folder = write_collection(tracks, tmp_path / "set")
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["1 tone.wav", "2 kick.wav"]
    assert folder["tracks"] == 2 and folder["missing"] == []
    for taken in (tmp_path / "set.m3u", tmp_path / "set"):
        with pytest.raises(InputError, match="Export refused|exists|not an empty"):
            write_collection(tracks, taken)


def test_cli_favourite_tag_collection_and_output_formats(capsys, fake_library, ids, settings, monkeypatch,
                                                         tmp_path):
    fake_library.close()  # the CLI opens the library itself
    embedder = FakeEmbedder()
    monkeypatch.setattr("engine.library.get_embedder", lambda settings, **_: embedder)
    base = ["--data-dir", str(settings.data_dir)]

    def run(*argv) -> tuple[int, str]:
        code = main([*argv, *base])
        return code, capsys.readouterr().out

    code, out = run("favourite", ids["tone"][:8], "--json")
    assert code == 0 and json.loads(out)["favourite"] is True
    code, out = run("tag", "add", ids["tone"][:8], "Bright", "keys", "--json")
    assert json.loads(out)["tags"] == ["bright", "keys"]
    code, out = run("tag", "list", "--json")
    assert json.loads(out) == [{"tag": "bright", "tracks": 1}, {"tag": "keys", "tracks": 1}]
    assert run("collection", "create", "Set", "--json")[1].strip() == json.dumps({"created": "Set"}, indent=2)
    code, out = run("collection", "add", "set", ids["hat"][:8], ids["tone"][:8], "--json")
    assert json.loads(out) == {"name": "Set", "tracks": [ids["hat"], ids["tone"]]}
    code, out = run("list", "--favourite", "--json")
    assert [t["id"] for t in json.loads(out)] == [ids["tone"]]
    code, out = run("list", "--tag", "BRIGHT", "--collection", "Set")
    assert "* tone.wav  [bright, keys]" in out
    code, out = run("list", "--tag", "none")
    assert out.strip() == "No tracks match."
    code, out = run("collection", "show", "set", "--json")
    assert [t["filename"] for t in json.loads(out)["tracks"]] == ["hat.wav", "tone.wav"]
    code, out = run("search", "a 880 Hz tone", "--format", "csv", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["filename"] for r in rows][0] == "tone.wav" and set(COLUMNS) <= set(rows[0])
    code, out = run("search", "--like", ids["kick"][:8], "880 Hz", "--weight", "2", "--format", "m3u")
    assert out.startswith("#EXTM3U\n") and out.splitlines()[2].endswith("tone.wav")
    code, out = run("collection", "export", "set", str(tmp_path / "set.m3u"), "--json")
    assert code == 0 and json.loads(out)["tracks"] == 2
    code, out = run("collection", "delete", "SET")
    assert out.strip() == "Deleted the collection 'Set' (its tracks stay in the library)."
    assert main(["collection", "show", "Set", *base]) == 1
    assert "no collection named 'Set'" in capsys.readouterr().err
