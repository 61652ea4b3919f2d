"""A lean HTTP/1.1 client for the load generators: asyncio protocols, no client library.

The event → toast loads run the generator on the same cores as the servers it measures, so
its own cost per request decides how much of the machine the servers get. aiohttp spends
several hundred µs of CPU per request; here a request is one ``write`` of prepared bytes on a
keep-alive connection and one parse of the status line and ``Content-Length``.

What it speaks is only what the copilot's routes answer: responses with ``Content-Length``
(ingest) and one chunked, never-ending response (an SSE stream). Anything else is an error of
the run, raised as :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import lru_cache
from typing import Callable, Deque, Optional, Set, Tuple
from urllib.parse import urlsplit


class ProtocolError(Exception):
    """The server answered something this client does not speak, or closed mid-response."""


@lru_cache(maxsize=None)
def host_port(url: str) -> Tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@lru_cache(maxsize=None)
def target(url: str) -> str:
    """The request target of ``url``: its path and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def post_request(url: str, body: bytes, content_type: str) -> bytes:
    return (f"POST {target(url)} HTTP/1.1\r\nHost: {host_port(url)[0]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ProtocolError(f"no Content-Length in {head[:120]!r}")


class _KeepAliveConnection(asyncio.Protocol):
    """One connection, one request at a time: ``request`` resolves to (status, body)."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.waiting: Optional[asyncio.Future[Tuple[int, bytes]]] = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, raw: bytes) -> "asyncio.Future[Tuple[int, bytes]]":
        assert self.transport is not None and self.waiting is None
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiting

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiting is None:
            return
        head = bytes(self.buffer[:end])
        try:
            length = _content_length(head)
            status = int(head.split(b" ", 2)[1])
        except (ProtocolError, ValueError, IndexError) as e:
            self._fail(e if isinstance(e, ProtocolError) else ProtocolError(f"bad response head {head[:120]!r}"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        waiting, self.waiting = self.waiting, None
        if not waiting.done():
            waiting.set_result((status, body))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self._fail(ProtocolError(f"connection closed: {exc}"))

    def drop(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class KeepAlivePool:
    """At most ``size`` keep-alive connections to one server; a request waits for a free one,
    and fails after ``timeout_s`` (its connection is dropped)."""

    def __init__(self, base: str, size: int, timeout_s: float = 60.0) -> None:
        self.host, self.port = host_port(base)
        self.slots = asyncio.Semaphore(size)
        self.timeout_s = timeout_s
        self.idle: Deque[_KeepAliveConnection] = deque()
        self.open: Set[_KeepAliveConnection] = set()  # to close at the end; a dropped one leaves it

    async def request(self, build: Callable[[], bytes]) -> Tuple[int, bytes]:
        """The request ``build`` makes once a connection is free (a client stamps what it
        sends when it sends it), and its answer."""
        async with self.slots:
            try:
                return await asyncio.wait_for(self._exchange(build), self.timeout_s)
            except asyncio.TimeoutError:
                raise ProtocolError(f"no answer in {self.timeout_s:g} s") from None

    async def _exchange(self, build: Callable[[], bytes]) -> Tuple[int, bytes]:
        connection = await self._take()
        try:
            result = await connection.request(build())
        except BaseException:  # failed or timed out: the connection's state is unknown
            connection.drop()
            self.open.discard(connection)
            raise
        self.idle.append(connection)
        return result

    async def _take(self) -> _KeepAliveConnection:
        while self.idle:
            connection = self.idle.pop()  # the most recently used: the least likely to have idled out
            if not connection.closed:
                return connection
            self.open.discard(connection)
        _, connection = await asyncio.get_running_loop().create_connection(_KeepAliveConnection, self.host, self.port)
        self.open.add(connection)
        return connection

    def close(self) -> None:
        for connection in self.open:
            if connection.transport is not None:
                connection.transport.close()


class SseStream(asyncio.Protocol):
    """An SSE response read as it arrives: the chunked framing undone, each event's ``data:``
    line handed to ``on_data``. ``opened`` resolves at the first body bytes (the server writes
    its first block once it has subscribed the stream) or fails with the status."""

    def __init__(self, request: bytes, on_data: Callable[[bytes], None]) -> None:
        self.request = request
        self.on_data = on_data
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended.add_done_callback(lambda ended: ended.cancelled() or ended.exception())  # read by whoever cares
        self.raw = bytearray()  # bytes on the wire not yet unframed
        self.text = bytearray()  # unframed body not yet split into lines
        self.head_read = False
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.raw += data
        try:
            if not self.head_read and not self._read_head():
                return
            self._unframe()
        except ProtocolError as e:
            self._end(e)
            return
        if self.text and not self.opened.done():
            self.opened.set_result(None)
        *lines, rest = bytes(self.text).split(b"\n")
        self.text = bytearray(rest)
        for line in lines:
            if line.startswith(b"data: "):
                self.on_data(line[6:])

    def _read_head(self) -> bool:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.raw[:end])
        del self.raw[:end + 4]
        status = (head.split(b" ", 2) + [b"", b""])[1]
        if status != b"200":
            raise ProtocolError(f"HTTP {status.decode(errors='replace')}")
        if b"chunked" not in head.lower():
            raise ProtocolError("the stream is not chunked")
        self.head_read = True
        return True

    def _unframe(self) -> None:
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            try:
                size = int(bytes(self.raw[:line_end]).split(b";")[0], 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {bytes(self.raw[:line_end])[:40]!r}") from None
            if size == 0:
                raise ProtocolError("the server ended the stream")
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.text += self.raw[line_end + 2:line_end + 2 + size]
            del self.raw[:line_end + 2 + size + 2]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._end(ProtocolError(f"connection closed: {exc}"))

    def _end(self, error: Exception) -> None:
        for future in (self.opened, self.ended):
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        if not self.opened.done():
            self.opened.cancel()
        if self.transport is not None:
            self.transport.close()


async def open_sse(url: str, on_data: Callable[[bytes], None]) -> SseStream:
    """Connect and send the stream's GET; await ``.opened`` for the server's first block."""
    host, port = host_port(url)
    request = f"GET {target(url)} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    _, stream = await asyncio.get_running_loop().create_connection(lambda: SseStream(request, on_data), host, port)
    return stream
