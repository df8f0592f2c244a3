"""serve.py's own settings for the server process (the live server itself: tests/test_server.py)."""

import asyncio
import socket


def test_connections_accepted_from_a_socket_bound_as_streamlit_binds_it_send_small_writes_at_once():
    import serve  # noqa: F401 - importing it, as `streamlit run serve.py` does, installs the setting

    async def accept_one() -> int:
        loop = asyncio.get_running_loop()
        listener = socket.socket(family=socket.AF_INET)  # protocol 0, as Streamlit's _bind_socket makes it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        accepted = loop.create_future()

        class Remember(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket"))

        server = await loop.create_server(Remember, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        try:
            sock = await asyncio.wait_for(accepted, 10)
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(accept_one()) != 0


def test_no_secrets_is_remembered_until_a_secrets_file_with_a_login_appears(tmp_path, monkeypatch):
    """The API asks whether an OIDC login is configured at every request: a miss is not looked up
    again, but a secrets file written while the server runs is seen at the next request."""
    import streamlit as st
    from streamlit import config

    import ui

    secrets_file = tmp_path / "secrets.toml"
    monkeypatch.setattr(ui, "_no_secrets", None)
    before = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(secrets_file)])
    ui._secrets_places.cache_clear()  # read once per server; here the test's
    looks = []
    parse = type(st.secrets)._parse
    monkeypatch.setattr(type(st.secrets), "_parse", lambda self: looks.append(1) or parse(self))
    try:
        assert not ui._oidc_configured()
        assert not ui._oidc_configured() and len(looks) == 1
        secrets_file.write_text('[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n')
        assert ui._oidc_configured()
    finally:
        config.set_option("secrets.files", before)
        ui._secrets_places.cache_clear()
        st.secrets._reset()


def test_the_api_looks_up_the_dashboards_library_and_settings_and_never_keeps_ones_let_go(
        tmp_path, monkeypatch, tiny_clap_dir):
    """The server's API asks for the library and the settings at every request, past Streamlit's
    cache (ui.held_library, ui.held_settings); what the cache lets go of (a clear closes the library)
    is never handed out again."""
    import ui

    monkeypatch.setenv("TRAUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAUM_CLAP_MODEL", str(tiny_clap_dir))
    monkeypatch.setenv("TRAUM_MAX_FILE_SIZE_MB", "7")
    ui.settings.clear()
    ui.library.clear()
    try:
        first = ui.held_library()
        assert first is ui.library() and ui.held_library() is first
        assert ui.held_settings() is ui.settings() and ui.held_settings().max_file_size_mb == 7

        monkeypatch.setenv("TRAUM_MAX_FILE_SIZE_MB", "9")
        ui.settings.clear()
        assert ui.held_settings().max_file_size_mb == 9
        ui.library.clear()
        second = ui.held_library()
        assert second is not first and second is ui.library() and second.settings.max_file_size_mb == 9
        assert second.stats()["tracks"] == 0  # open, where the first one was closed by the clear
    finally:
        ui.settings.clear()
        ui.library.clear()


def test_the_server_polls_streamlits_config_files_every_two_seconds_and_still_sees_an_edit(tmp_path):
    """Streamlit's config pollers, which st.App starts whatever fileWatcherType says, look every
    CONFIG_POLL_S instead of every 0.2 s (each look takes the GIL from a running search), and a
    change to a watched file is still reported."""
    import threading

    from streamlit.watcher import polling_path_watcher

    import serve

    assert polling_path_watcher._POLLING_PERIOD_SECS == serve.CONFIG_POLL_S == 2.0
    watched = tmp_path / "config.toml"
    seen = threading.Event()
    watcher = polling_path_watcher.PollingPathWatcher(str(watched), lambda path: seen.set(), allow_nonexistent=True)
    try:
        watched.write_text('[server]\nport = 8502\n')
        assert seen.wait(timeout=3 * serve.CONFIG_POLL_S)
    finally:
        watcher.close()
