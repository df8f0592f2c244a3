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
