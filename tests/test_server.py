"""The real server (``streamlit run serve.py``): the dashboard and the API in one process, one library."""

import datetime as dt
import json
import time
import urllib.request

from tests.fixtures_audio import click_track, sine, write_audio
from tests.fixtures_server import call, environment_for, multipart, run_cli, serving


def test_the_dashboard_and_the_api_share_one_library(tmp_path, tiny_clap_dir):
    tone = write_audio(tmp_path / "tone.wav", sine(440, 2), 44_100).read_bytes()
    clicks = write_audio(tmp_path / "clicks.wav", click_track(120, 8), 44_100).read_bytes()
    with serving(tmp_path, tiny_clap_dir) as url:
        api = f"{url}/api/v1"
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"  # the dashboard
        status, health = call(f"{api}/health")
        assert status == 200 and health["status"] == "ok" and health["tracks"] == 0
        status, schema = call(f"{api}/openapi.json")
        assert status == 200 and "/audio/upload" in schema["paths"]

        body, headers = multipart([("tone.wav", tone), ("clicks.wav", clicks)])
        status, accepted = call(f"{api}/audio/upload", "POST", body, headers)
        assert status == 202 and [item["status"] for item in accepted] == ["queued", "queued"]
        deadline = time.monotonic() + 120
        for item in accepted:
            while True:
                status, job = call(f"{api}/audio/status/{item['job_id']}")
                if job["status"] not in ("queued", "running"):
                    break
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
            assert job["status"] == "added", job
        status, listing = call(f"{api}/audio/files")
        assert status == 200 and sorted(t["filename"] for t in listing) == ["clicks.wav", "tone.wav"]
        search = json.dumps({"query": "a steady tone", "limit": 5}).encode()
        status, hits = call(f"{api}/search/text", "POST", search, {"Content-Type": "application/json"})
        assert status == 200 and len(hits) == 2

        # The guard: a rebinding page's Host, a cross-site delete.
        status, refused = call(f"{api}/health", headers={"Host": "evil.example"})
        assert status == 400 and refused["detail"]["title"] == "Foreign host"
        target = listing[0]["id"]
        status, refused = call(f"{api}/audio/files/{target}", "DELETE", headers={"Origin": "http://evil.example"})
        assert status == 403
        status, deleted = call(f"{api}/audio/files/{target}", "DELETE")
        assert status == 200 and deleted["id"] == target
        status, health = call(f"{api}/health")
        assert health["tracks"] == 1


def test_the_cli_works_through_the_running_server_and_prints_what_it_prints_alone(tmp_path, tiny_clap_dir):
    samples = tmp_path / "samples"
    write_audio(samples / "tones" / "tone.wav", sine(440, 2), 44_100)
    write_audio(samples / "tones" / "low.flac", sine(110, 1.5), 48_000)
    write_audio(samples / "clicks_120.wav", click_track(120, 8), 44_100)
    (samples / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    (samples / "notes.txt").write_text("clutter, skipped")
    environment = environment_for(tmp_path, tiny_clap_dir)
    data = tmp_path / "data"

    def cli(*args, env=environment):
        done = run_cli(env, *args, cwd=tmp_path)  # relative paths, as a user types them
        return done.returncode, done.stdout, done.stderr

    reads = [("list", "--json"), ("list",), ("stats", "--json"), ("folder", "list", "--json"),
             ("search", "a steady tone", "--json"), ("search", "a steady tone"),
             ("search", "--audio", "samples/tones/tone.wav", "--json"), ("show", "{id}", "--json"), ("show", "{id}"),
             ("search", "--like", "{id}", "--json"), ("list", "--kind", "loop", "--json"), ("show", "nothere")]
    with serving(tmp_path, tiny_clap_dir) as url:
        api = f"{url}/api/v1"
        note = data / "server.json"
        assert oct(note.stat().st_mode & 0o777) == "0o600"
        assert json.loads(note.read_text())["url"] == api

        code, out, err = cli("ingest", "samples", "--json")  # the server holds the library: through its API
        assert code == 1, err  # the broken file
        through_server = json.loads(out)
        assert len(through_server["added"]) == 3 and through_server["failed"][0]["path"] == "samples/broken.wav"
        assert {item["path"] for item in through_server["added"]} >= {"samples/tones/tone.wav"}
        status, listing = call(f"{api}/audio/files")
        assert status == 200 and len(listing) == 3  # the server's library has them
        code, out, _ = cli("sync", "--json")
        assert code == 1 and json.loads(out)["unchanged"] == 3
        track = next(t for t in listing if t["filename"] == "clicks_120.wav")["id"]
        code, out, _ = cli("delete", track[:8], "--json")
        assert code == 0 and json.loads(out)["deleted"]["id"] == track
        assert call(f"{api}/audio/files/{track}/metadata")[0] == 404
        code, out, _ = cli("ingest", "samples/clicks_120.wav", "--json")
        assert [item["id"] for item in json.loads(out)["added"]] == [track]

        tone = next(t for t in listing if t["filename"] == "tone.wav")["id"]
        # What a person keeps, through the server: the API sees it at once.
        for change in (("favourite", tone[:8]), ("tag", "add", tone[:8], "Bright", "keys"),
                       ("collection", "create", "Set"), ("collection", "add", "set", tone[:8], track[:8])):
            assert cli(*change)[0] == 0, change
        status, kept = call(f"{api}/audio/files/{tone}/metadata")
        assert kept["favourite"] and kept["tags"] == ["bright", "keys"] and kept["collections"] == ["Set"]
        reads += [("tag", "list", "--json"), ("collection", "show", "set", "--json"), ("collection", "list"),
                  ("list", "--favourite", "--tag", "BRIGHT", "--collection", "Set", "--json"),
                  ("search", "--like", "{id}", "440 Hz", "--weight", "1.5", "--json"),
                  ("search", "a steady tone", "--format", "csv"), ("search", "a steady tone", "--format", "m3u")]
        served = {read: cli(*(part.format(id=tone) for part in read)) for read in reads}
        # The CLI's JSON is the API's: the same tracks in the same order with the same fields.
        status, listing = call(f"{api}/audio/files")
        cli_listing = json.loads(served[("list", "--json")][1])
        assert [t["id"] for t in cli_listing] == [t["id"] for t in listing]
        for ours, theirs in zip(cli_listing, listing):
            assert set(ours) <= set(theirs)  # every field the CLI shows, the API shows
            assert {k: v for k, v in ours.items() if k != "created_at"} == {k: theirs[k] for k in ours
                                                                            if k != "created_at"}
            # The same moment: the API's says its offset (RFC 3339), the CLI's is local wall-clock time.
            assert dt.datetime.fromisoformat(theirs["created_at"]).astimezone().replace(tzinfo=None) == \
                dt.datetime.fromisoformat(ours["created_at"])
        hits = json.loads(served[("search", "a steady tone", "--json")][1])
        body = json.dumps({"query": "a steady tone"}).encode()
        assert [h["id"] for h in hits] == [h["id"] for h in call(f"{api}/search/text", "POST", body,
                                                                 {"Content-Type": "application/json"})[1]]

        code, _, err = cli("import", str(tmp_path / "nothing"))
        assert code == 1 and "holds this library" in err and "import" in err
        code, out, _ = cli("api-key", "create", "script", "--json")
        key = json.loads(out)["key"]
        assert code == 0 and call(f"{api}/auth/keys")[0] == 401  # keys are the local user's business
        code, out, _ = cli("api-key", "list", "--json")
        assert [k["name"] for k in json.loads(out)] == ["script"]

    assert not note.exists()  # the server took its note back
    # Stats through the server know the pending embeddings (its model has loaded); a command that
    # opens the library itself does not load the model for stats, so says null.
    assert json.loads(served[("stats", "--json")][1])["pending_embeddings"] == 0
    served[("stats", "--json")] = (0, served[("stats", "--json")][1].replace('"pending_embeddings": 0',
                                                                           '"pending_embeddings": null'), "")
    for read, (code, out, err) in served.items():  # the same command, opening the library itself
        alone = cli(*(part.format(id=tone) for part in read))
        assert alone[:2] == (code, out), read
        assert said(alone[2]) == said(err), read  # the messages; loading the model draws a bar as well
    code, out, _ = cli("api-key", "revoke", "script", "--json")
    assert code == 0 and key.startswith("tk_")


def said(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and "Loading weights" not in line]
