"""A local HTTP server for the stage-1 tests (127.0.0.1, a free port, one thread per request), and
the payloads it serves (images, zip and tar archives, sample trees of a matting split; the small
releases in the official layouts of the real sources are in tests/realworld.py).

Each route serves fixed bytes and can misbehave on purpose: answer 5xx a few times, drop the
connection after N bytes once (``drop_after``) or on every request (``cut_at``), omit
``Content-Length``, send the body in chunks (``chunked``: a cut body then breaks off inside a
chunk, as a dropped chunked transfer does), ignore ``Range`` requests, serve any ``Content-Type``
(an HTML page), drip the body a byte at a time, or return any status. Validators: a strong
``ETag`` (or a weak one, or none) and ``Last-Modified``, both derived from the current body, so
changing ``Route.body`` is a new object; ``If-Range`` is honoured (a validator that no longer
matches gets the whole new body, 200). Every request's ``Range`` header is recorded in
``Route.hits`` and its ``If-Range`` in ``Route.if_ranges``, so tests can check what the client
asked for.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Route:
    body: bytes
    status: int = 200
    fail_times: int = 0
    fail_status: int = 500
    drop_after: int | None = None     # cut the connection after this many body bytes, once
    cut_at: int | None = None         # never send the body's bytes from this offset on
    content_length: bool = True       # send Content-Length
    chunked: bool = False             # Transfer-Encoding: chunked (no Content-Length)
    content_type: str = "application/octet-stream"
    ignore_range: bool = False
    etag: str | None = "strong"       # "strong" | "weak" | None
    last_modified: bool = True
    drip: float | None = None         # seconds between single bytes of the body
    hits: list = field(default_factory=list)
    if_ranges: list = field(default_factory=list)

    def validators(self) -> dict[str, str]:
        """The ``ETag`` / ``Last-Modified`` headers of the current body."""
        digest = hashlib.sha256(self.body).hexdigest()
        headers = {}
        if self.etag:
            headers["ETag"] = ('W/' if self.etag == "weak" else "") + f'"{digest[:16]}"'
        if self.last_modified:
            headers["Last-Modified"] = formatdate(1_600_000_000 + int(digest[:6], 16), usegmt=True)
        return headers


class LocalServer:
    """``with LocalServer() as server: server.add("/a.zip", data); requests.get(server.url("/a.zip"))``."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> LocalServer:
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

        def do_GET(self):
            with server._lock:
                route = server.routes.get(self.path)
                if route is not None:
                    route.hits.append(self.headers.get("Range"))
                    route.if_ranges.append(self.headers.get("If-Range"))
                    failing = route.fail_times > 0
                    route.fail_times -= failing
                    drop, route.drop_after = route.drop_after, None
            if route is None:
                return self._status(404)
            if failing:
                return self._status(route.fail_status)
            if route.status != 200:
                return self._status(route.status)
            body, start, validators = route.body, 0, route.validators()
            requested, if_range = self.headers.get("Range"), self.headers.get("If-Range")
            same_object = if_range is None or if_range in validators.values()
            if requested and not route.ignore_range and same_object:
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
            if route.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif route.content_length:
                self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Content-Type", route.content_type)
            for name, value in validators.items():
                self.send_header(name, value)
            self.end_headers()
            payload = body[start:route.cut_at] if route.cut_at is not None else body[start:]
            if drop is not None:
                payload = payload[:drop]
            try:
                if route.chunked:
                    self._chunks(body[start:], len(payload))
                elif route.drip is None:
                    self.wfile.write(payload)
                else:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i:i + 1])
                        self.wfile.flush()
                        time.sleep(route.drip)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a deadline test)
            self.close_connection = True

        def _chunks(self, body: bytes, sent: int, size: int = 4096) -> None:
            """``body`` in chunks of ``size`` bytes, stopping (inside a chunk) after ``sent`` bytes."""
            for offset in range(0, len(body), size):
                chunk = body[offset:offset + size]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk[:max(sent - offset, 0)])
                if offset + len(chunk) > sent:
                    return
                self.wfile.write(b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler


# --- payloads ------------------------------------------------------------------------------------

def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def png(array: np.ndarray) -> bytes:
    """PNG bytes of an array in OpenCV's channel order (BGR / BGRA)."""
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def jpg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    return buf.tobytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def tar_bytes(members: list, mode: str = "w:gz") -> bytes:
    """A tar archive of ``TarInfo`` members (links, devices) and ``(name, bytes)`` files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def torch_zip() -> bytes:
    """The shape of a zip-format torch checkpoint (``archive/data.pkl``)."""
    return zip_bytes({"archive/data.pkl": b"pickle", "archive/version": b"3"})


def sample(rng, h=24, w=32) -> tuple[bytes, np.ndarray]:
    """(jpg bytes of an image, uint8 alpha) of one h x w sample."""
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
    alpha[h // 4, w // 4:3 * w // 4] = 128
    return jpg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), alpha


def write_file(path: Path, blob: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


def split_tree(root: Path, n=3, *, trimap=False, rng=None) -> Path:
    """A matting split ``root/{original,mask[,trimap]}/s<i>.*`` of ``n`` clean 32x24 samples."""
    rng = rng or np.random.default_rng(4)
    for i in range(n):
        image, alpha = sample(rng)
        write_file(root / "original" / f"s{i}.jpg", image)
        write_file(root / "mask" / f"s{i}.png", png(alpha))
        if trimap:
            write_file(root / "trimap" / f"s{i}.png", png(alpha))
    return root


def tree(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (to show that nothing changed)."""
    return {str(p.relative_to(root)): sha(p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


#: What Google Drive serves with status 200 instead of a file: a quota page and a virus-scan warning.
QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
              b"<p class=\"uc-error-subcaption\">Too many users have viewed or downloaded this file recently. "
              b"Please try accessing the file again later.</p></body></html>")
VIRUS_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
              b"<form id=\"download-form\" action=\"https://drive.usercontent.google.com/download\">"
              b"Google Drive can't scan this file for viruses.</form></body></html>")
