"""When the worker's event loop has read enough of a request to give it to a thread."""

from __future__ import annotations

import pytest

from shared.buffering_worker import (
    BUFFERED_BODY_BYTES,
    MAX_HEAD_BYTES,
    expects_continue,
    request_complete,
)

HEAD = b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", True),
        # Pipelined: the next request is the parser's business.
        (b"GET /health HTTP/1.1\r\n\r\nGET /he", True),
        (HEAD + b'Content-Length: 10\r\n\r\n{"a": ', False),
        (HEAD + b'content-length:  10 \r\n\r\n{"a": 1234', True),
        (HEAD + b"Content-Length: 10\r\nX: y\r\n\r\n" + b"0" * 12, True),
        # Too large to buffer, chunked: the thread reads it, within its deadline.
        (HEAD + f"Content-Length: {BUFFERED_BODY_BYTES + 1}\r\n\r\n".encode(), True),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", True),
        # A Content-Length in the body is not the head's.
        (HEAD + b"\r\n\r\nContent-Length: 10\r\n", True),
        # A head that never ends goes to the parser once too long: it answers 431.
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6), True),
    ],
)
def test_request_complete(data: bytes, complete: bool) -> None:
    assert request_complete(data) is complete


@pytest.mark.parametrize(
    ("data", "expects"),
    [
        (HEAD + b"Expect: 100-continue\r\nContent-Length: 2000\r\n\r\n", True),
        (HEAD + b"expect:100-Continue\r\n\r\n", True),
        (HEAD + b"Expect: 100-continue\r\n", False),  # the head is not all there yet
        (HEAD + b"Content-Length: 2000\r\n\r\n", False),
    ],
)
def test_expects_continue(data: bytes, expects: bool) -> None:
    assert expects_continue(data) is expects
