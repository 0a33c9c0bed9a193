"""gunicorn's gevent worker, with a time limit on every request but a WebSocket stream.

gevent's worker (monitor_app's, in the Procfile) serves each connection in a greenlet, so a
live stream holds no thread and a worker holds thousands of them. It bounds only the wait for
a request's head (gunicorn's `keepalive`): a client trickling its body, or reading the answer
a byte at a time, would hold its greenlet, and one of the worker's `worker_connections`, for
as long as it liked. Here a request is cut off after REQUEST_SECONDS, the threaded worker's
limit on what a thread reads (shared/buffering_worker.py), unless it lifts its deadline
itself (shared/request_deadline.py): a live stream does, once its handshake is done and its
caller checked.
"""

from __future__ import annotations

import gevent
from gunicorn.workers.ggevent import GeventWorker

from shared.buffering_worker import REQUEST_BODY_SECONDS
from shared.request_deadline import RequestTooSlowError, within

REQUEST_SECONDS = REQUEST_BODY_SECONDS


class BoundedGeventWorker(GeventWorker):
    """gevent's worker; a request that has not lifted its deadline ends within
    REQUEST_SECONDS."""

    def handle_request(self, listener_name, req, sock, addr):
        def serve():
            return super(BoundedGeventWorker, self).handle_request(listener_name, req, sock, addr)

        try:
            answered = within(REQUEST_SECONDS, serve)
        except RequestTooSlowError:
            self.log.info("Closing a request unfinished after %.0f s", REQUEST_SECONDS)
            # gunicorn's word for "close this connection without another answer".
            raise StopIteration from None
        # A greenlet yields only when it would block. A keep-alive client whose next request
        # is already in, served by code that never waits (SQLite's calls do not), would be
        # answered again and again while every other connection and stream of the worker
        # waited: seconds at the p99. One turn for the others after each request.
        gevent.sleep(0)
        return answered
