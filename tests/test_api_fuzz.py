"""Property-based: schemathesis generates requests from the live server's own OpenAPI schema
(bounded examples, offline); no answer may be a 5xx, and every answer must match the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.fixtures_audio import click_track, sine, write_audio
from tests.fixtures_server import call, multipart, serving

EXAMPLES = 25  # per operation: about a minute in all on two cores
# Adding a folder, syncing, importing paths or exporting read and write real folders of this machine
# ("/" is a valid path): tests/test_api.py covers them with examples instead.
ON_THE_MACHINES_FILES = {("POST", "/folders"), ("POST", "/folders/sync"), ("POST", "/tasks/ingest"),
                         ("POST", "/tasks/sync"), ("POST", "/tasks/add-folder"), ("POST", "/tasks/export")}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, tiny_clap_dir):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    with serving(tmp_path, tiny_clap_dir) as url:
        # Something to find, list, play and delete.
        files = [(name, write_audio(tmp_path / name, samples, 44_100).read_bytes())
                 for name, samples in (("tone.wav", sine(440, 2)), ("clicks.wav", click_track(120, 8)))]
        status, _ = call(f"{url}/api/v1/audio/upload", "POST", *multipart(files))
        assert status == 202
        yield schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")


def test_no_server_errors_and_answers_match_the_schema(api_schema):
    # Each operation in turn, with Hypothesis driving schemathesis's strategies directly
    # (its pytest plugin does not run under this pytest).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    operations = [op for op in operations if (op.method.upper(), op.path) not in ON_THE_MACHINES_FILES]
    for operation in operations:
        # A file's type and content cannot be written in a schema: an upload or an example clip may
        # be refused (415, 413, 422) however well-formed the request. Every other check still applies.
        excluded = [schemathesis.checks.positive_data_acceptance] if takes_files(operation) else []

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(excluded_checks=excluded)

        check()


def takes_files(operation) -> bool:
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    return "multipart/form-data" in content
