"""Shared fixtures: generated audio (fixtures_audio), a deterministic fake
embedder (fixtures_fake) and the tiny offline CLAP model (fixtures_clap)."""

import pytest

from tests.fixtures_audio import *  # noqa: F401,F403
from tests.fixtures_clap import *  # noqa: F401,F403
from tests.fixtures_fake import *  # noqa: F401,F403


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (the browser test screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
