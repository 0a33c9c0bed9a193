"""The benchmarks' WebSocket clients of monitor_app's /api/v1/ws."""

from __future__ import annotations

from typing import Any

import websocket


def open_stream(url: str, token: str, timeout: float, **options: Any) -> websocket.WebSocket:
    """A stream signed in with `token`.

    websocket-client checks each text frame's UTF-8 in pure Python unless wsaccel is
    installed: a loop over every byte that made the measuring clients the busiest part of an
    end-to-end run, and so late readers of what they time. Skipped: recv() decodes a text
    frame's bytes as UTF-8, which refuses the same frames.
    """
    return websocket.create_connection(
        url,
        timeout=timeout,
        header=[f"Authorization: Bearer {token}"],
        skip_utf8_validation=True,
        **options,
    )
