"""A local HTTP server for the download tests (127.0.0.1, a free port, one thread per request).

Each route serves fixed bytes and can misbehave on purpose: answer 5xx a few times, drop the
connection after N bytes once, ignore ``Range`` requests, or return any status. Every request's
``Range`` header is recorded in ``Route.hits`` so tests can check what the client asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    status: int = 200
    fail_times: int = 0
    fail_status: int = 500
    drop_after: int | None = None
    ignore_range: bool = False
    hits: list = field(default_factory=list)


class LocalServer:
    """``with LocalServer() as server: server.add("/a.zip", data); requests.get(server.url("/a.zip"))``."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add(self, path: str, body: bytes, **kwargs) -> Route:
        self.routes[path] = Route(body, **kwargs)
        return self.routes[path]

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"


def _handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):  # noqa: N802 - http.server naming
            with server._lock:
                route = server.routes.get(self.path)
                if route is not None:
                    route.hits.append(self.headers.get("Range"))
                    failing = route.fail_times > 0
                    route.fail_times -= failing
                    drop, route.drop_after = route.drop_after, None
            if route is None:
                return self._status(404)
            if failing:
                return self._status(route.fail_status)
            if route.status != 200:
                return self._status(route.status)
            body, start = route.body, 0
            requested = self.headers.get("Range")
            if requested and not route.ignore_range:
                start = int(requested.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            payload = body[start:] if drop is None else body[start:start + drop]
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler
