import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

REPO = Path(__file__).resolve().parents[1]
SHOW_KEYS = {"id", "filename", "format", "duration", "sample_rate", "channels", "tempo", "spectral_centroid",
             "zero_crossing_rate", "rms_energy", "file_size", "truncated", "created_at"}


def run_json(capsys, *argv):
    code = main(list(argv) + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_ingest_json_contract_and_exit_status(capsys, data_dir, audio_dir):
    code, report = run_json(capsys, "ingest", str(audio_dir / "formats"))
    assert code == 0
    assert set(report) == {"added", "duplicates", "failed"}
    assert len(report["added"]) == 4 and all({"path", "id"} <= set(item) for item in report["added"])
    code, report = run_json(capsys, "ingest", str(audio_dir / "formats"), str(audio_dir / "bad" / "random.wav"))
    assert code == 1
    assert len(report["duplicates"]) == 4
    [failed] = report["failed"]
    assert failed["path"].endswith("random.wav") and "decodable" in failed["error"]


def test_stats_list_show_delete_json(capsys, data_dir, audio_dir):
    main(["ingest", str(audio_dir / "sine440.wav"), str(audio_dir / "click120.wav"), "--json"])
    capsys.readouterr()
    code, stats = run_json(capsys, "stats")
    assert code == 0 and stats["tracks"] == 2 and stats["total_duration_s"] == pytest.approx(25.0)
    code, listing = run_json(capsys, "list", "--limit", "1")
    assert code == 0 and len(listing) == 1 and SHOW_KEYS <= set(listing[0])
    code, listing = run_json(capsys, "list", "--limit", "5", "--offset", "1")
    assert len(listing) == 1
    code, track = run_json(capsys, "show", listing[0]["id"][:10])
    assert code == 0 and SHOW_KEYS <= set(track) and track["id"] == listing[0]["id"]
    code, deleted = run_json(capsys, "delete", track["id"])
    assert code == 0 and deleted["deleted"]["id"] == track["id"]
    assert (audio_dir / "sine440.wav").exists() and (audio_dir / "click120.wav").exists()
    code, error = run_json(capsys, "show", track["id"])
    assert code == 1 and error["error"]["title"] == "Not found"


def test_list_and_show_say_what_a_sample_is_and_filter_on_it(capsys, data_dir, audio_dir):
    main(["ingest", str(audio_dir / "sine440.wav"), str(audio_dir / "click120.wav"), "--json"])
    capsys.readouterr()
    code, track = run_json(capsys, "show", run_json(capsys, "list")[1][0]["id"])
    assert code == 0
    assert {"kind", "key", "key_confidence", "camelot", "tempo_source", "categories"} <= set(track)
    code, loops = run_json(capsys, "list", "--kind", "loop")
    assert code == 0 and [t["filename"] for t in loops] == ["click120.wav"]
    assert loops[0]["tempo"] == pytest.approx(120, rel=0.02) and loops[0]["tempo_source"] == "audio"
    code, shots = run_json(capsys, "list", "--kind", "one-shot")
    assert [t["filename"] for t in shots] == ["sine440.wav"] and shots[0]["tempo"] is None
    # No model here: no categories, and a category filter finds nothing rather than failing.
    code, listing = run_json(capsys, "list", "--category", "kick")
    assert code == 0 and listing == [] and shots[0]["categories"] == []
    assert main(["list", "--category", "kick"]) == 0
    assert capsys.readouterr().out.strip() == "No tracks match."
    code, error = run_json(capsys, "list", "--key", "H minor")
    assert code == 1 and error["error"]["title"] == "Invalid filter" and "F minor" in error["error"]["message"]
    code, error = run_json(capsys, "search", "kick", "--compatible-with", "F")
    assert code == 1 and "with its mode" in error["error"]["message"]
    code, report = run_json(capsys, "reanalyse")
    assert code == 0 and report == {"analysed": [], "failed": []}


def test_api_keys_are_shown_once_listed_by_name_and_revoked(capsys, data_dir):
    code, created = run_json(capsys, "api-key", "create", "daw-script")
    assert code == 0 and created["key"].startswith("tk_") and len(created["key"]) > 40
    code, keys = run_json(capsys, "api-key", "list")
    assert [k["name"] for k in keys] == ["daw-script"] and created["key"] not in json.dumps(keys)
    code, error = run_json(capsys, "api-key", "create", "daw-script")
    assert code == 1 and error["error"]["title"] == "Name taken"
    assert run_json(capsys, "api-key", "revoke", "daw-script") == (0, {"revoked": "daw-script"})
    code, error = run_json(capsys, "api-key", "revoke", "daw-script")
    assert code == 1 and error["error"]["title"] == "Not found"


def test_every_command_has_help(capsys):
    for command in ("ingest", "stats", "list", "show", "delete", "reanalyse"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "--json" in capsys.readouterr().out


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), timeout=120)


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(tmp_path):
    """``list --json | head``: the reader closes the pipe before the command has written everything."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # here before anything is written
    process = subprocess.Popen([sys.executable, "-m", "engine", "list", "--json"], cwd=REPO, stdout=write_end,
                               stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO), TRAUM_DATA_DIR=str(tmp_path / "data")))
    os.close(write_end)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert process.returncode == 1


def test_errors_exit_cleanly_without_traceback(tmp_path):
    env = {"TRAUM_DATA_DIR": str(tmp_path / "data")}
    usage = _cli("list", "--limit", "many", env=env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    config = _cli("stats", env={**env, "TRAUM_MAX_CONCURRENT_JOBS": "lots"})
    assert config.returncode == 2 and "Configuration error" in config.stderr and "Traceback" not in config.stderr
    missing = _cli("show", "abcdef123456", env=env)
    assert missing.returncode == 1 and "Not found" in missing.stderr and "Traceback" not in missing.stderr
    debug = _cli("show", "abcdef123456", "--debug", env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
