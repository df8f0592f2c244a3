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


@pytest.fixture
def private_trash(tmp_path, monkeypatch):
    """The system trash inside the test's folder (XDG_DATA_HOME/Trash): send2trash reads the variable
    once, when imported, so it is imported afresh for each test that uses it."""
    import sys

    def forget():
        for name in [name for name in sys.modules if name.split(".")[0] == "send2trash"]:
            del sys.modules[name]

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    forget()
    yield tmp_path / "xdg" / "Trash" / "files"
    forget()
