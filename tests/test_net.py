"""``pdserving.net``: binding, free ports (one the kernel picks, or the first free from N) and
waiting for a condition."""

import asyncio
import itertools
import socket

import pytest

from pdserving.net import PortInUse, bind, free_port, wait_until


def listening() -> tuple:
    """A socket listening on a port the kernel picked, and that port."""
    sock = bind("127.0.0.1", 0)
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_port_in_use_cannot_be_bound_and_is_named():
    taken, port = listening()
    with taken, pytest.raises(PortInUse, match=f"cannot listen on 127.0.0.1:{port}"):
        bind("127.0.0.1", port)


def test_free_port_without_a_start_is_one_the_kernel_picks():
    port = free_port()
    assert 0 < port < 65536
    bind("127.0.0.1", port).close()  # nothing listens there


def test_free_port_from_a_start_is_the_first_free_one():
    """The rule of ``--model_port``: that port if free, else the next free one after it."""
    port = free_port()
    assert free_port(port) == port
    taken, port = listening()
    with taken:
        found = free_port(port)
        assert found > port
        bind("127.0.0.1", found).close()


def test_wait_until_returns_the_conditions_value():
    calls = itertools.count(1)
    assert wait_until(lambda: next(calls) >= 3 and "done", 5, interval=0.001) == "done"
    assert next(calls) == 4  # called until true, not once more


def test_wait_until_names_what_it_waited_for():
    with pytest.raises(TimeoutError, match="the moon: not after 0.05 s"):
        wait_until(lambda: None, 0.05, "the moon", interval=0.01)


def test_connections_accepted_on_a_bound_socket_have_nodelay():
    """asyncio (uvicorn) turns Nagle off only on sockets whose protocol is IPPROTO_TCP: with it
    on, a keep-alive response waits for the client's delayed ACK (~40 ms)."""
    async def main() -> int:
        seen = asyncio.get_running_loop().create_future()

        async def accept(reader, writer):
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = bind("127.0.0.1", 0)
        server = await asyncio.start_server(accept, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            nodelay = await asyncio.wait_for(seen, 10)
            writer.close()
        return nodelay

    assert asyncio.run(main()) != 0
