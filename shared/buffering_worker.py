"""gunicorn's threaded worker, made to give a thread only to a request that has arrived.

gunicorn's gthread worker hands each connection to a thread as soon as its first byte
arrives; the thread then blocks reading the rest of the head for as long as the client takes
to send it. Forty sockets sending one header line a second (slowloris) held every thread of
two sixteen-thread workers, and `/health` stopped answering.

This worker reads a request's head, and a small body announced by Content-Length, in its
event loop, without blocking (over TLS, the handshake too), as nginx does in front of an
application server; the request goes to a thread once it is all there. A client that has
not sent it within `REQUEST_HEAD_SECONDS` is disconnected, and so are the slowest of them
when the worker holds as many connections as it may (worker_connections). What a thread
still reads itself (a large or chunked body, a pipelined request) must arrive within
`REQUEST_BODY_SECONDS`, so no client holds a thread longer than that by sending slowly.

`gunicorn.conf.py` and shared/serve.py run every app with it.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import ssl
import time
from collections import deque
from functools import partial

from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

# nginx's client_header_timeout is 60 s by default; Vigil's clients are on the same network.
REQUEST_HEAD_SECONDS = 10.0
# The rest of a request a thread reads itself, from when it starts reading.
REQUEST_BODY_SECONDS = 30.0
# Bodies up to this size are read before a thread is involved (nginx's client_body_buffer).
BUFFERED_BODY_BYTES = 1024 * 1024
# A head longer than this goes to the parser, which answers 431 or 400.
MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.I)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r\n", re.I)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ReadDeadlineUnreader(SocketUnreader):
    """gunicorn's socket reader, with a deadline that bounds every read a thread makes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.deadline: float | None = None
        self.expired = False

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.deadline is None:
            return super().chunk(size_hint)
        remaining = self.deadline - time.monotonic()
        prior = self.sock.gettimeout()
        try:
            if remaining <= 0:
                raise TimeoutError("request read deadline passed")
            self.sock.settimeout(remaining if prior is None else min(prior, remaining))
            return super().chunk(size_hint)
        except TimeoutError:
            # Seen as the end of the data: the parser gives up on the request quietly, and the
            # connection is closed rather than kept alive (see BufferedConn.reusable).
            self.expired = True
            return b""
        finally:
            self.sock.settimeout(prior)


class BufferedConn(TConn):
    """A connection with the bytes the event loop read ahead of its thread."""

    def __init__(self, cfg, sock, client, server) -> None:
        super().__init__(cfg, sock, client, server)
        self.read_ahead = bytearray()
        self.unreader: ReadDeadlineUnreader | None = None
        self.continued = False
        # Served over TLS: whether the event loop has completed the handshake yet.
        self.handshaken: bool | None = None

    def init(self) -> None:
        if self.handshaken and self.parser is None:
            # TConn.init would wrap the socket in TLS again: the loop already has.
            self.sock.setblocking(True)
            if gunicorn_sock.is_http2_negotiated(self.sock):
                self.is_http2 = True
                self.parser = http.get_parser(
                    self.cfg, self.sock, self.client, http2_connection=True
                )
                self.parser.initiate_connection()
            else:
                self.parser = http.get_parser(self.cfg, self.sock, self.client)
        super().init()
        if isinstance(self.parser, RequestParser) and self.unreader is None:
            self.unreader = ReadDeadlineUnreader(self.sock)
            self.unreader.unread(self.parser.unreader.take_buffered())
            self.parser.unreader = self.unreader
            self.arm(REQUEST_BODY_SECONDS)
        self.hand_over()

    def hand_over(self) -> None:
        """Give the parser what the event loop read (in the thread, or the loop itself)."""
        if self.read_ahead and self.unreader is not None:
            self.unreader.unread(bytes(self.read_ahead))
            self.read_ahead.clear()

    def arm(self, seconds: float) -> None:
        if self.unreader is not None:
            self.unreader.deadline = time.monotonic() + seconds

    @property
    def reusable(self) -> bool:
        return self.unreader is None or not self.unreader.expired


def request_complete(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole head, and its body if a small Content-Length says so.

    Anything else (chunked, large, malformed) is for the parser and the thread to deal with.
    """
    end = data.find(_HEAD_END)
    if end < 0:
        return len(data) > MAX_HEAD_BYTES
    length = _CONTENT_LENGTH.search(data, 0, end + 2)
    if length is None:
        return True
    wanted = int(length.group(1))
    return wanted > BUFFERED_BODY_BYTES or len(data) - end - len(_HEAD_END) >= wanted


def expects_continue(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole head that asks for "100 Continue" before its body."""
    end = data.find(_HEAD_END)
    return end >= 0 and _EXPECT_CONTINUE.search(data, 0, end + 2) is not None


class BufferingThreadWorker(ThreadWorker):
    """gthread, reading each request in the event loop before a thread serves it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Connections whose request is still arriving, oldest (soonest to expire) first.
        self.arriving: deque[BufferedConn] = deque()
        self._tls: ssl.SSLContext | None = None

    # -- the event loop (main thread) -------------------------------------------------------
    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname())
        if self.cfg.is_ssl:
            # The handshake too is the loop's: a client could send its hello as slowly.
            if self._tls is None:
                self._tls = gunicorn_sock.ssl_context(self.cfg)
            try:
                conn.sock = self._tls.wrap_socket(
                    client_sock,
                    server_side=True,
                    do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                )
            except (OSError, ValueError):
                self.nr_conns -= 1
                client_sock.close()
                return
            conn.handshaken = False
        self._await_request(conn)

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection's next request starts: read it here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)

    def _await_request(self, conn: BufferedConn) -> None:
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + REQUEST_HEAD_SECONDS
        self.arriving.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_ahead, conn))

    def _read_ahead(self, conn: BufferedConn, client) -> None:
        try:
            if conn.handshaken is False:
                conn.sock.do_handshake()
                conn.handshaken = True
                if gunicorn_sock.is_http2_negotiated(conn.sock):
                    # HTTP/2 multiplexes its requests: the thread reads them, as gunicorn's.
                    self._serve(conn)
                    return
            data = conn.sock.recv(_RECV_BYTES)
            # Decrypted bytes TLS holds already do not make the socket readable again.
            while isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                data += conn.sock.recv(conn.sock.pending())
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError):
            data = b""
        if not data:
            self.arriving.remove(conn)
            self._disconnect(conn)
            return
        conn.read_ahead += data
        if request_complete(conn.read_ahead):
            self._serve(conn)
        elif not conn.continued and expects_continue(conn.read_ahead):
            # The client (curl, for a body over 1 KiB) waits for it before sending the body;
            # the thread sends gunicorn's own as well, and clients accept several 1xx.
            conn.continued = True
            try:
                conn.sock.send(_CONTINUE)
            except OSError:
                pass

    def _serve(self, conn: BufferedConn) -> None:
        """Give the connection, its request all there, to a thread."""
        self.poller.unregister(conn.sock)
        self.arriving.remove(conn)
        conn.data_ready = True
        conn.hand_over()  # a kept-alive connection has its parser already
        conn.sock.setblocking(True)
        self.enqueue_req(conn)

    def set_accept_enabled(self, enabled: bool) -> None:
        """At worker_connections, gunicorn stops accepting: new clients would wait in the
        listen queue behind a flood of unfinished requests. Make room by disconnecting the
        clients that have taken longest to send theirs instead."""
        if not enabled and self.alive:
            while self.arriving and self.nr_conns >= self.worker_connections:
                self._disconnect(self.arriving.popleft())
            enabled = self.nr_conns < self.worker_connections
        super().set_accept_enabled(enabled)

    def _disconnect(self, conn: BufferedConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also disconnect the clients that took too long to send their request."""
        super().murder_pending()
        now = time.monotonic()
        while self.arriving and self.arriving[0].timeout <= now:
            self._disconnect(self.arriving.popleft())

    # -- the threads ------------------------------------------------------------------------
    def handle(self, conn: BufferedConn):
        # A pipelined request, not read by the loop, must still arrive in time (a new
        # connection is armed once its parser exists).
        conn.arm(REQUEST_BODY_SECONDS)
        return super().handle(conn)

    def handle_request(self, req, conn: BufferedConn) -> bool:
        conn.arm(REQUEST_BODY_SECONDS)
        keepalive = super().handle_request(req, conn)
        return keepalive and conn.reusable
