"""Shared fixtures: generated audio (fixtures_audio), a deterministic fake
embedder (fixtures_fake) and the tiny offline CLAP model (fixtures_clap)."""

import pytest

pytest_plugins = ["tests.fixtures_audio", "tests.fixtures_clap", "tests.fixtures_fake"]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (the browser test screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
