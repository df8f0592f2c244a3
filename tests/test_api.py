"""The HTTP API over a real on-disk library (fake embedder): every endpoint, its errors, and the guard."""

import io
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api import create_api
from tests.fixtures_audio import click_track, sine, write_audio

LOCAL = "http://127.0.0.1:8501"


def wav_bytes(tmp_path, name, samples, rate=44_100) -> bytes:
    return write_audio(tmp_path / name, samples, rate).read_bytes()


@pytest.fixture
def api(fake_library):
    return TestClient(create_api(lambda: fake_library), base_url=LOCAL)


@pytest.fixture
def uploaded(api, fake_library, tmp_path):
    """Two tracks uploaded through the API and imported."""
    files = [("file", ("tone.wav", wav_bytes(tmp_path, "tone.wav", sine(440, 2)), "audio/wav")),
             ("file", ("clicks.wav", wav_bytes(tmp_path, "clicks.wav", click_track(120, 8)), "audio/wav"))]
    response = api.post("/audio/upload", files=files)
    assert response.status_code == 202
    assert fake_library.wait_for_uploads(60)
    return response.json()


def error(response) -> dict:
    return response.json()["detail"]


def test_health(api):
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["tracks"] == 0 and body["version"]
    assert set(body["model"]) >= {"loaded", "error", "hint"}


def test_upload_then_status_then_listing(api, uploaded):
    assert [(item["filename"], item["status"]) for item in uploaded] == [("tone.wav", "queued"),
                                                                         ("clicks.wav", "queued")]
    ids = []
    for item in uploaded:
        status = api.get(f"/audio/status/{item['job_id']}").json()
        assert status["status"] == "added" and status["progress"] == 1.0 and status["audio_file_id"]
        ids.append(status["audio_file_id"])
    response = api.get("/audio/files")
    listing = response.json()
    assert response.headers["content-type"] == "application/json" and len(listing) == 2
    assert {t["id"] for t in listing} == set(ids)
    first = listing[0]
    assert {"id", "filename", "duration", "tempo", "file_size", "created_at", "processed", "kind", "key",
            "categories"} <= set(first)
    loops = api.get("/audio/files", params={"kind": "loop"}).json()
    assert [t["filename"] for t in loops] == ["clicks.wav"]
    page = api.get("/audio/files", params={"limit": 1, "skip": 1, "sort": "filename", "descending": "false"})
    assert [t["filename"] for t in page.json()] == ["tone.wav"] and page.headers["x-total-count"] == "2"


def test_metadata_audio_with_ranges_and_delete(api, uploaded, fake_library):
    track_id = api.get(f"/audio/status/{uploaded[0]['job_id']}").json()["audio_file_id"]
    meta = api.get(f"/audio/files/{track_id[:10]}/metadata").json()
    for field in ("sample_rate", "channels", "spectral_centroid", "zero_crossing_rate", "rms_energy", "file_path"):
        assert field in meta
    stored = fake_library.audio_path(fake_library.track(track_id)).read_bytes()
    whole = api.get(f"/audio/files/{track_id}/audio")
    assert whole.status_code == 200 and whole.content == stored
    part = api.get(f"/audio/files/{track_id}/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == stored[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(stored)}"
    deleted = api.delete(f"/audio/files/{track_id}")
    assert deleted.status_code == 200 and deleted.json()["id"] == track_id
    assert not deleted.json()["file_kept"]  # an upload is the library's own copy
    assert api.get(f"/audio/files/{track_id}/metadata").status_code == 404


def test_search_by_text_audio_and_similar(api, uploaded, tmp_path):
    hits = api.post("/search/text", json={"query": "a 440 Hz tone", "limit": 5}).json()
    assert hits[0]["filename"] == "tone.wav" and hits[0]["rank"] == 1
    assert {"similarity_score", "file_path", "segment_start", "segment_end", "created_at"} <= set(hits[0])
    only_loops = api.post("/search/text", json={"query": "a 440 Hz tone", "kinds": ["loop"]}).json()
    assert [hit["filename"] for hit in only_loops] == ["clicks.wav"]
    clip = wav_bytes(tmp_path, "query.wav", sine(440, 1))
    by_audio = api.post("/search/audio", files={"file": ("query.wav", clip, "audio/wav")},
                        data={"limit": "1"}).json()
    assert [hit["filename"] for hit in by_audio] == ["tone.wav"]
    similar = api.get(f"/search/similar/{hits[0]['id']}").json()
    assert [hit["filename"] for hit in similar] == ["clicks.wav"]


def test_errors_carry_title_message_and_hint(api, fake_library, tmp_path):
    unknown = api.get("/audio/status/nope")
    assert unknown.status_code == 404 and error(unknown)["title"] == "Not found"
    assert api.get("/audio/files/0123456789/metadata").status_code == 404
    bad_type = api.post("/audio/upload", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert bad_type.status_code == 415 and ".wav" in error(bad_type)["hint"]
    fake_library.settings.max_file_size_mb = 1
    big = api.post("/audio/upload", files={"file": ("big.wav", b"\0" * (2 * 1048576), "audio/wav")})
    assert big.status_code == 413 and "limit" in error(big)["message"]
    for params in ({"key": "H minor"}, {"compatible_with": "F"}, {"kind": "drone"}, {"category": "kicks"}):
        refused = api.get("/audio/files", params=params)
        assert refused.status_code == 422 and error(refused)["title"] == "Invalid request", params
        assert next(iter(params)) in error(refused)["message"]
    for blank in ("", " \t", "\x1f", "\x1c \x1d"):  # \x1c-\x1f: blank to Python's strip, not to \\S
        empty = api.post("/search/text", json={"query": blank})
        assert empty.status_code == 422 and error(empty)["title"] == "Invalid request", repr(blank)
    # A body that is missing or not JSON (curl -d without the JSON Content-Type sends a form) says so.
    form = api.post("/search/text", content=b'{"query": "kick"}',
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 422 and "Content-Type: application/json" in error(form)["message"]
    assert "'application/x-www-form-urlencoded'" in error(form)["message"]
    missing = api.post("/search/text")
    assert missing.status_code == 422 and error(missing)["message"].startswith("body: missing")
    broken = api.post("/search/text", content=b'{"query": "kick",}', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and error(broken)["message"].startswith("body: not valid JSON at character 17")
    not_object = api.post("/search/text", json=["kick"])
    assert not_object.status_code == 422 and error(not_object)["message"].startswith("body: Input should be")
    corrupt = api.post("/search/audio", files={"file": ("x.wav", b"RIFF\0\0", "audio/wav")})
    assert corrupt.status_code == 422
    # Several files: one answer each; a refused one says why and the rest go on.
    mixed = api.post("/audio/upload", files=[("file", ("a.txt", b"x", "text/plain")),
                                             ("file", ("b.wav", wav_bytes(tmp_path, "b.wav", sine(300, 1)),
                                                       "audio/wav"))])
    assert mixed.status_code == 202
    assert [item["status"] for item in mixed.json()] == ["failed", "queued"]
    assert fake_library.wait_for_uploads(60)


def test_analytics_distributions(api, uploaded):
    body = api.get("/analytics/distributions").json()
    assert sum(row["count"] for row in body["duration"]) == 2
    assert {row["kind"]: row["count"] for row in body["kinds"]}["loop"] == 1
    assert api.get("/analytics/distributions", params={"kind": "long"}).json() == {}


def test_openapi_describes_every_route(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/health", "/audio/upload", "/audio/status/{job_id}", "/audio/files", "/audio/files/{file_id}/metadata",
            "/audio/files/{file_id}/audio", "/audio/files/{file_id}", "/search/text", "/search/audio",
            "/search/similar/{file_id}", "/analytics/distributions"} <= set(paths)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8501", "192.168.1.20:8501", ""])
def test_foreign_host_is_refused(fake_library, host):
    client = TestClient(create_api(lambda: fake_library), base_url=LOCAL)
    response = client.get("/health", headers={"host": host})
    assert response.status_code == 400 and error(response)["title"] == "Foreign host"


@pytest.mark.parametrize("host", ["localhost:8501", "127.0.0.1", "[::1]:8501"])
def test_own_host_names_pass(api, host):
    assert api.get("/health", headers={"host": host}).status_code == 200


def test_foreign_origin_may_not_change_anything(api, uploaded):
    track_id = api.get("/audio/files").json()[0]["id"]
    for method, path in (("DELETE", f"/audio/files/{track_id}"), ("POST", "/search/text")):
        response = api.request(method, path, headers={"origin": "https://evil.example"},
                               json={"query": "x"} if method == "POST" else None)
        assert response.status_code == 403 and error(response)["title"] == "Foreign origin"
    assert api.get("/audio/files", headers={"origin": "https://evil.example"}).status_code == 200  # reads pass
    same = api.post("/search/text", headers={"origin": LOCAL}, json={"query": "x"})
    assert same.status_code == 200
    assert len(api.get("/audio/files").json()) == 2  # nothing was deleted


def test_a_shared_dashboard_needs_a_token_or_an_api_key(settings, fake_embedder):
    from engine.auth import hash_password
    from engine.library import Library

    shared_settings = settings.model_copy(update={"auth_password_hash": hash_password("correct horse"),
                                                  "access_token_expire_minutes": 1.0 / 60})
    with Library(shared_settings, embedder_provider=lambda: fake_embedder) as library:
        client = TestClient(create_api(lambda: library, shared=lambda: True), base_url="http://studio.lan:8501")
        assert client.get("/health").status_code == 200  # open: monitoring needs no login
        for path in ("/audio/files", "/openapi.json"):
            response = client.get(path)
            assert response.status_code == 401 and error(response)["title"] == "Not authorised"
        assert client.post("/audio/upload", files={"file": ("a.wav", io.BytesIO(b"x"), "audio/wav")}).status_code == 401
        wrong = client.post("/auth/token", json={"password": "wrong horse"})
        assert wrong.status_code == 401 and error(wrong)["message"] == "wrong password."
        token = client.post("/auth/token", json={"password": "correct horse"}).json()
        assert token["token_type"] == "bearer" and token["expires_in"] == 1
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get("/audio/files", headers=bearer).status_code == 200
        forged = {"Authorization": f"Bearer {token['access_token'][:-2]}xx"}
        assert client.get("/audio/files", headers=forged).status_code == 401
        time.sleep(2.1)  # the token lived one second
        assert client.get("/audio/files", headers=bearer).status_code == 401
        key = library.create_api_key("daw-script")
        assert key not in str(library.api_keys())  # only its digest is kept
        with_key = {"Authorization": f"Bearer {key}"}
        assert client.get("/audio/files", headers=with_key).status_code == 200
        library.revoke_api_key("daw-script")
        assert client.get("/audio/files", headers=with_key).status_code == 401


def test_folders_add_sync_list_and_remove(api, tmp_path):
    pack = tmp_path / "pack"
    write_audio(pack / "kick.wav", sine(60, 0.5), 44_100)
    write_audio(pack / "Loops" / "beat.wav", click_track(120, 4), 44_100)
    (pack / "notes.txt").write_text("clutter")
    added = api.post("/folders", json={"path": str(pack), "watch": False})
    assert added.status_code == 202 and added.json()["running"]
    deadline = time.monotonic() + 60
    while (state := api.get("/folders/sync").json())["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["error"] is None and len(state["report"]["added"]) == 2
    [folder] = api.get("/folders").json()
    assert folder["path"] == str(pack.resolve()) and folder["tracks"] == 2 and not folder["watched"]
    again = api.post("/folders/sync", json={})
    assert again.status_code == 202
    refused = api.post("/folders", json={"path": str(tmp_path / "nowhere")})
    assert refused.status_code == 422 and error(refused)["title"] == "Folder not found"
    assert api.delete("/folders", params={"path": str(tmp_path / "other")}).status_code == 404
    while api.get("/folders/sync").json()["running"]:
        time.sleep(0.2)
    removed = api.delete("/folders", params={"path": str(pack)})
    assert removed.status_code == 200 and len(removed.json()["tracks_removed"]) == 2
    assert (pack / "kick.wav").exists() and api.get("/audio/files").json() == []


def finished(api, task: dict) -> dict:
    deadline = time.monotonic() + 60
    while task["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
        task = api.get(f"/tasks/{task['id']}").json()
    return task


def test_tasks_run_the_cli_commands_with_their_own_results(api, tmp_path):
    pack = tmp_path / "pack"
    write_audio(pack / "kick.wav", sine(60, 0.5), 44_100)
    write_audio(pack / "Loops" / "beat.wav", click_track(120, 4), 44_100)
    (pack / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnope")
    started = api.post("/tasks/ingest", json={"paths": [str(pack), str(tmp_path / "gone.wav")]})
    assert started.status_code == 202 and started.json()["action"] == "ingest"
    task = finished(api, started.json())
    assert task["status"] == "done" and task["progress"]["done"] == 4
    results = {Path(item["source"]).name: item for item in task["result"]}
    assert {name: item["status"] for name, item in results.items()} == {
        "kick.wav": "added", "beat.wav": "added", "broken.wav": "failed", "gone.wav": "failed"}
    assert results["gone.wav"]["error"].startswith("File not found")

    sync = finished(api, api.post("/tasks/sync", json={"paths": [str(pack)], "prune": True}).json())
    assert sync["status"] == "done" and sync["result"]["unchanged"] == 2 and sync["progress"]["phase"] == "done"
    # (pending_embeddings: None, as the fake embedder is not the model the library reports on)
    assert api.get("/stats").json() == {
        "tracks": 2, "total_duration_s": pytest.approx(4.5), "total_bytes": sum(
            (pack / name).stat().st_size for name in ("kick.wav", "Loops/beat.wav")),
        "formats": {"wav": 2}, "missing": 0, "pending_embeddings": None}

    exported = finished(api, api.post("/tasks/export", json={"target": str(tmp_path / "backup")}).json())
    assert exported["status"] == "done" and exported["result"]["rows"]["tracks"] == 2
    assert (tmp_path / "backup" / "manifest.json").exists()
    again = finished(api, api.post("/tasks/export", json={"target": str(tmp_path / "backup")}).json())
    assert again["status"] == "failed" and again["result"] is None
    assert again["error"]["type"] == "EngineError" and "backup" in again["error"]["message"]

    nowhere = finished(api, api.post("/tasks/add-folder", json={"path": str(tmp_path / "nowhere")}).json())
    assert nowhere["error"]["title"] == "Folder not found" and nowhere["error"]["type"] == "InputError"
    assert api.get("/tasks/no-such-task").status_code == 404
    assert api.post("/tasks/ingest", json={"paths": []}).status_code == 422
    assert api.post("/tasks/sync", json={"prune": "yes please"}).status_code == 422


def test_errors_name_the_engine_error_class(api):
    response = api.get("/audio/files/abcdef123456/metadata")
    assert response.status_code == 404 and error(response)["type"] == "NotFoundError"
    refused = api.get("/audio/files", params={"key": "Hm"})
    assert refused.status_code == 422


def test_api_keys_are_managed_only_with_the_servers_own_token(fake_library):
    client = TestClient(create_api(lambda: fake_library, shared=lambda: True, local_token=lambda: "local-secret"),
                        base_url=LOCAL)
    own = {"Authorization": "Bearer local-secret"}
    assert client.get("/audio/files", headers=own).status_code == 200  # the user's own commands pass
    created = client.post("/auth/keys", headers=own, json={"name": "daw"})
    assert created.status_code == 201 and created.json()["name"] == "daw"
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    assert client.get("/audio/files", headers=key).status_code == 200
    # A key opens the API, but does not make or list keys: only the server's own user does.
    for response in (client.get("/auth/keys", headers=key), client.post("/auth/keys", headers=key, json={"name": "x"}),
                     client.delete("/auth/keys/daw", headers=key)):
        assert response.status_code == 401 and error(response)["type"] == "AuthError"
    assert [k["name"] for k in client.get("/auth/keys", headers=own).json()] == ["daw"]
    assert client.post("/auth/keys", headers=own, json={"name": "daw"}).status_code == 409  # taken
    assert client.delete("/auth/keys/daw", headers=own).json() == {"revoked": "daw"}
    assert client.get("/audio/files", headers=key).status_code == 401
    assert client.delete("/auth/keys/daw", headers=own).status_code == 404
    assert client.get("/audio/files", headers={"Authorization": "Bearer local-secreT"}).status_code == 401


def test_a_server_without_a_note_manages_no_keys(api):
    assert api.get("/auth/keys").status_code == 401


def test_favourites_tags_and_collections(api, uploaded):
    tone = next(t["id"] for t in api.get("/audio/files").json() if t["filename"] == "tone.wav")
    starred = api.put(f"/audio/files/{tone[:8]}/favourite")
    assert starred.status_code == 200 and starred.json()["favourite"] is True
    tagged = api.post(f"/audio/files/{tone}/tags", json={"add": ["Bright", "keys"], "remove": ["none"]})
    assert tagged.json()["tags"] == ["bright", "keys"]
    assert api.get("/tags").json() == [{"tag": "bright", "tracks": 1}, {"tag": "keys", "tracks": 1}]
    assert [t["id"] for t in api.get("/audio/files", params={"favourite": True}).json()] == [tone]
    assert [t["id"] for t in api.get("/audio/files", params={"tag": ["KEYS", "bright"]}).json()] == [tone]
    assert api.get("/audio/files", params={"tag": "none"}).json() == []
    created = api.post("/collections", json={"name": "Set A"})
    assert created.status_code == 201 and created.json() == {"name": "Set A", "tracks": []}
    assert api.post("/collections", json={"name": "set a"}).status_code == 409
    assert api.post("/collections", json={"name": "a/b"}).status_code == 422
    added = api.post("/collections/set%20a/tracks", json={"ids": [tone]})
    assert added.json() == {"name": "Set A", "tracks": [tone]}
    contents = api.get("/collections/SET A").json()
    assert [t["id"] for t in contents["tracks"]] == [tone] and contents["tracks"][0]["collections"] == ["Set A"]
    assert api.get("/collections").json()[0]["tracks"] == 1
    hits = api.post("/search/text", json={"query": "a tone", "collection": "Set A", "tags": ["bright"]}).json()
    assert [h["id"] for h in hits] == [tone]
    like = api.get(f"/search/similar/{tone}", params={"but": "440 Hz", "weight": 1.5})
    assert like.status_code == 200 and tone not in [h["id"] for h in like.json()]
    assert api.get(f"/search/similar/{tone}", params={"but": "x", "weight": 3}).status_code == 422
    removed = api.delete("/collections/Set A/tracks", params={"id": [tone[:10]]})
    assert removed.json() == {"name": "Set A", "tracks": []}
    assert api.delete("/collections/set a").json()["name"] == "Set A"
    assert api.get("/collections/set a").status_code == 404
    assert api.delete(f"/audio/files/{tone}/favourite").json()["favourite"] is False
    assert api.put("/audio/files/ffffffffffff/favourite").status_code == 404
    assert api.post(f"/audio/files/{tone}/tags", json={"add": [""]}).status_code == 422
