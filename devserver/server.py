"""The shape every development server shares: start() and stop(), and `with` over them."""

from __future__ import annotations

from typing import Self


class Server:
    """A server a test or a benchmark starts, uses and stops again.

    `with server:` starts it, and stops it on the way out; a start that fails half way stops
    whatever did start, so no process outlives the test that made it.
    """

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
