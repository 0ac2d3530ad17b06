"""A webhook receiver on this machine that answers every POST 204, for communication's subscribers that want
their notices by webhook (the services started here may deliver to loopback: development). It counts the
distinct notices it was given (deliveries are at least once: a notice may come twice)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

NOTICE_ID_HEADER = "X-Fivecogs-Notice-Id"  # communication's webhooks send the notice id in it


class Receiver:
    def __init__(self) -> None:
        self.notices: set[str] = set()
        self.lock = threading.Lock()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name for it
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with received.lock:
                    received.notices.add(self.headers.get(NOTICE_ID_HEADER) or "")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:  # one line per request on stderr: not here
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/notices"

    @property
    def received(self) -> int:
        with self.lock:
            return len(self.notices - {""})

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
