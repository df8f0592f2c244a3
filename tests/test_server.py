"""The real server (``streamlit run serve.py``): the dashboard and the API in one process, one library."""

import json
import time
import urllib.request

from tests.fixtures_audio import click_track, sine, write_audio
from tests.fixtures_server import call, multipart, serving


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
