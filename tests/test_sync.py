"""Library folders and sync on a generated sample library: clutter, short one-shots, moves,
renames, deletes, overwrites and re-adds, each checked against the expected report."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import stages
from engine.cli import main
from engine.errors import InputError, NotFoundError
from tests.fixtures_audio import click, click_track, noise_burst, sine, single_cycle, white_noise, write_audio

RATE = 44_100


def build_tree(root: Path) -> dict[str, Path]:
    """A small sample library as producers keep one: nested folders, one-shots down to 2 ms,
    several formats, clutter, a hidden folder, a link loop and the same kick in two places."""
    files = {
        "kick": write_audio(root / "Drums" / "Kicks" / "kick.wav", sine(55, 0.3) * np.linspace(1, 0, int(0.3 * RATE)),
                            RATE),
        "hat": write_audio(root / "Drums" / "Hats" / "hat_closed.wav", noise_burst(0.09, decay_per_s=60), RATE),
        "shaker": write_audio(root / "Drums" / "Shakers" / "shaker.wav", noise_burst(0.03, seed=3), RATE),
        "saw": write_audio(root / "Synth" / "Single Cycle" / "saw_64.wav", single_cycle(64), RATE),
        "click": write_audio(root / "Synth" / "click.wav", click(0.002), RATE),
        "pad": write_audio(root / "Pads" / "pad.aiff", sine(220, 2) + 0.1 * white_noise(2), RATE),
        "loop": write_audio(root / "Loops" / "loop.ogg", click_track(120, 2), RATE),
        "vox": write_audio(root / "Loops" / "vox.opus", sine(300, 1, 48_000), 48_000),
    }
    copy = root / "Dup" / "kick_copy.wav"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(files["kick"], copy)
    files["kick_copy"] = copy
    for clutter in ("Drums/Kicks/kick.wav.asd", "readme.txt", "Pads/cover.png", ".DS_Store", "Synth/preset.fxp"):
        (root / clutter).write_bytes(b"not audio")
    hidden = root / ".hidden"
    hidden.mkdir()
    write_audio(hidden / "secret.wav", sine(1000, 0.5), RATE)
    os.symlink(root, root / "Synth" / "loop-to-root")
    return files


def ids_by_path(report: dict) -> dict[str, str]:
    return {item["path"]: item["id"] for key in ("added", "duplicates") for item in report[key]}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "Samples"
    return root, build_tree(root)


def test_a_folder_of_real_samples_is_indexed_whole_and_clutter_is_skipped(fake_library, tree):
    root, files = tree
    report = fake_library.add_folder(root).to_dict()
    assert report["failed"] == []
    added = {Path(item["path"]).name for item in report["added"]}
    [dup] = report["duplicates"]
    # The two copies of the kick import at once; whichever saves first is "added", the other a location of it.
    kicks = {"kick.wav", "kick_copy.wav"}
    assert {Path(dup["path"]).name} | (added & kicks) == kicks and len(added & kicks) == 1
    assert added - kicks == {"hat_closed.wav", "shaker.wav", "saw_64.wav", "click.wav", "pad.aiff", "loop.ogg",
                             "vox.opus"}
    assert report["skipped"] == 6  # five clutter files and the hidden folder; the link loop ends silently
    kick = fake_library.track(dup["id"])
    assert kick.locations == tuple(sorted(str(files[k].resolve()) for k in ("kick", "kick_copy")))
    formats = {Path(t.path).name: t.format for t in fake_library.tracks(limit=100)}
    assert formats["pad.aiff"] == "aiff" and formats["loop.ogg"] == "ogg" and formats["vox.opus"] == "opus"
    [folder] = fake_library.folders()
    assert (folder.path, folder.tracks, folder.missing, folder.watched) == (str(root.resolve()), 8, 0, True)
    assert folder.last_sync is not None


def test_unchanged_files_are_not_read_again(fake_library, tree, monkeypatch):
    root, _ = tree
    fake_library.add_folder(root)

    def must_not_read(*args, **kwargs):
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr(stages.audio, "hash_file", must_not_read)
    monkeypatch.setattr(stages.audio, "decode", must_not_read)
    report = fake_library.sync().to_dict()
    assert report["unchanged"] == 9 and report["skipped"] == 6
    assert all(report[key] == [] for key in ("added", "changed", "moved", "missing", "failed"))


def test_renames_moves_deletes_overwrites_and_readds(fake_library, tree, monkeypatch):
    root, files = tree
    first = fake_library.add_folder(root).to_dict()
    ids = ids_by_path(first)
    real = {name: str(path.resolve()) for name, path in files.items()}

    # Rename and move between folders: same id, nothing decoded, still found by search.
    renamed = root / "Pads" / "warm pad.aiff"
    os.rename(files["pad"], renamed)
    moved = root / "Pads" / "hat.wav"
    os.rename(files["hat"], moved)
    real_decode = stages.audio.decode
    monkeypatch.setattr(stages.audio, "decode", lambda *a, **k: pytest.fail("a moved file was decoded"))
    report = fake_library.sync().to_dict()
    monkeypatch.setattr(stages.audio, "decode", real_decode)
    assert sorted((Path(m["from"]).name, Path(m["path"]).name) for m in report["moved"]) == [
        ("hat_closed.wav", "hat.wav"), ("pad.aiff", "warm pad.aiff")]
    assert {m["id"] for m in report["moved"]} == {ids[real["pad"]], ids[real["hat"]]}
    assert report["added"] == report["missing"] == report["changed"] == []
    pad = fake_library.track(ids[real["pad"]])
    assert pad.path == str(renamed.resolve()) and pad.locations == (str(renamed.resolve()),)
    assert any(h.id == pad.id and h.path == pad.path for h in fake_library.search_text("220 Hz", limit=3))

    # Delete: the track is missing, left out of search and the default listing, listed on request.
    os.remove(files["click"])
    report = fake_library.sync().to_dict()
    assert report["missing"] == [{"path": real["click"], "id": ids[real["click"]]}]
    assert ids[real["click"]] not in {t.id for t in fake_library.tracks(limit=100)}
    assert [t.id for t in fake_library.tracks(missing=True)] == [ids[real["click"]]]
    assert ids[real["click"]] not in {h.id for h in fake_library.search_text("noise", limit=50)}
    assert fake_library.folders()[0].missing == 1

    # One of two locations gone: not missing.
    os.remove(files["kick_copy"])
    report = fake_library.sync().to_dict()
    assert [m["id"] for m in report["missing"]] == [ids[real["click"]]]
    assert fake_library.track(ids[real["kick"]]).locations == (real["kick"],)

    # Overwrite with other audio: the path's track is replaced by the new content's.
    write_audio(files["shaker"], white_noise(0.5, seed=9), RATE)
    report = fake_library.sync().to_dict()
    [changed] = report["changed"]
    assert changed["path"] == real["shaker"] and changed["id"] != ids[real["shaker"]]
    with pytest.raises(NotFoundError):
        fake_library.track(ids[real["shaker"]])
    assert fake_library.track(changed["id"]).path == real["shaker"]

    # Re-add the deleted file: the same track is back, not a new one.
    write_audio(files["click"], click(0.002), RATE)
    report = fake_library.sync().to_dict()
    assert report["restored"] == [{"path": real["click"], "id": ids[real["click"]]}]
    assert report["missing"] == [] and report["added"] == []
    assert not fake_library.track(ids[real["click"]]).missing
    assert ids[real["click"]] in {h.id for h in fake_library.search_text("noise", limit=50)}

    # Prune: a missing track leaves the library only when asked.
    os.remove(files["vox"])
    assert [m["id"] for m in fake_library.sync().to_dict()["missing"]] == [ids[real["vox"]]]
    report = fake_library.sync(prune=True).to_dict()
    assert report["pruned"] == [{"path": real["vox"], "id": ids[real["vox"]]}] and report["missing"] == []
    with pytest.raises(NotFoundError):
        fake_library.track(ids[real["vox"]])


def test_a_moved_folder_is_followed_without_decoding(fake_library, tmp_path, monkeypatch):
    library_root = tmp_path / "Library"
    for i in range(12):
        write_audio(library_root / "Pack A" / f"hit{i:02d}.wav", sine(100 + 40 * i, 0.2), RATE)
    added = fake_library.add_folder(library_root).to_dict()["added"]
    monkeypatch.setattr(stages.audio, "decode", lambda *a, **k: pytest.fail("a moved file was decoded"))
    (library_root / "Vendors").mkdir()
    os.rename(library_root / "Pack A", library_root / "Vendors" / "Pack A")
    report = fake_library.sync().to_dict()
    assert len(report["moved"]) == 12 and report["missing"] == [] and report["added"] == []
    assert {m["id"] for m in report["moved"]} == {a["id"] for a in added}
    assert all("/Vendors/Pack A/" in m["path"] for m in report["moved"])


def test_a_file_that_failed_is_not_retried_until_it_changes(fake_library, tmp_path, monkeypatch):
    root = tmp_path / "Samples"
    write_audio(root / "good.wav", sine(440, 0.5), RATE)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE nothing here")
    first = fake_library.add_folder(root).to_dict()
    assert [Path(f["path"]).name for f in first["failed"]] == ["broken.wav"]
    second = fake_library.sync().to_dict()
    assert second["failed"] == [] and second["failed_before"] == 1 and second["unchanged"] == 1
    write_audio(root / "broken.wav", sine(660, 0.5), RATE)  # fixed by the user
    third = fake_library.sync().to_dict()
    assert [Path(a["path"]).name for a in third["added"]] == ["broken.wav"] and third["failed_before"] == 0


def test_folder_paths_are_checked(fake_library, tmp_path):
    (tmp_path / "a file.wav").write_bytes(b"x")
    for path, title in ((tmp_path / "nowhere", "Folder not found"), (tmp_path / "a file.wav", "Not a folder"),
                        (fake_library.settings.data_dir, "Not a sample folder"), ("  ", "No folder given")):
        with pytest.raises(InputError) as info:
            fake_library.add_folder(path)
        assert info.value.title == title
    with pytest.raises(NotFoundError):
        fake_library.sync([tmp_path])  # not a library folder
    assert fake_library.folders() == []


def test_removing_a_folder_forgets_only_what_lives_there(fake_library, tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    write_audio(a / "only_a.wav", sine(200, 0.5), RATE)
    write_audio(a / "both.wav", sine(300, 0.5), RATE)
    shutil.copytree(a, b, dirs_exist_ok=True)
    (b / "only_a.wav").unlink()
    fake_library.add_folder(a)
    fake_library.add_folder(b)
    removed = fake_library.remove_folder(a)
    assert [Path(t["path"]).name for t in removed["tracks_removed"]] == ["only_a.wav"]
    assert [Path(t.path).name for t in fake_library.tracks()] == ["both.wav"]
    assert (a / "only_a.wav").is_file()  # never a user's file
    assert [f.path for f in fake_library.folders()] == [str(b.resolve())]


def test_cli_folder_and_sync_json(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tmp_path / "no-model"))  # embeddings stay pending
    root = tmp_path / "Samples"
    write_audio(root / "a.wav", sine(200, 0.3), RATE)
    write_audio(root / "b.flac", sine(300, 0.3), RATE)
    (root / "notes.txt").write_text("clutter")

    def run(*argv):
        code = main([*argv, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, report = run("folder", "add", str(root), "--no-watch")
    assert code == 0 and {"added", "duplicates", "failed", "skipped"} <= set(report)
    assert len(report["added"]) == 2 and report["skipped"] == 1
    code, folders = run("folder", "list")
    assert code == 0 and folders[0]["path"] == str(root.resolve()) and folders[0]["tracks"] == 2
    assert folders[0]["watched"] is False and folders[0]["missing"] == 0 and folders[0]["last_sync"]
    os.remove(root / "a.wav")
    code, report = run("sync")
    assert code == 0 and [Path(m["path"]).name for m in report["missing"]] == ["a.wav"]
    assert {"added", "changed", "moved", "missing", "failed", "unchanged", "skipped"} <= set(report)
    code, listing = run("list")
    assert [Path(t["path"]).name for t in listing] == ["b.flac"]
    assert listing[0]["missing"] is False and listing[0]["locations"] == [str((root / "b.flac").resolve())]
    code, gone = run("list", "--missing")
    assert [t["filename"] for t in gone] == ["a.wav"] and gone[0]["missing"] is True
    (root / "bad.wav").write_bytes(b"not audio")
    code, report = run("sync", str(root))
    assert code == 1 and [Path(f["path"]).name for f in report["failed"]] == ["bad.wav"]
    code, report = run("sync")
    assert code == 0 and report["failed_before"] == 1  # an old failure is counted, not a new one
    code, removed = run("folder", "remove", str(root))
    assert code == 0 and len(removed["tracks_removed"]) == 2
    assert (root / "b.flac").is_file()


def test_an_empty_folder_is_added_and_synced(fake_library, tmp_path):
    (tmp_path / "Empty" / "Sub").mkdir(parents=True)
    (tmp_path / "Empty" / "readme.txt").write_text("no audio here")
    assert fake_library.add_folder(tmp_path / "Empty").to_dict()["skipped"] == 1
    assert fake_library.ingest([tmp_path / "Empty"]) == []
    assert fake_library.sync().unchanged == 0
