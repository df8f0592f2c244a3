"""Shared fixtures. Audio fixtures live in tests/fixtures_audio.py, the tiny
offline CLAP model in tests/fixtures_clap.py."""

from tests.fixtures_audio import *  # noqa: F401,F403
from tests.fixtures_fake import *  # noqa: F401,F403
try:
    from tests.fixtures_clap import *  # noqa: F401,F403
except ModuleNotFoundError:  # TEMP until the CLAP fixtures land
    pass
