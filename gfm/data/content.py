"""What a downloaded file is, from its first bytes: an archive, a torch checkpoint, an image, or an
HTML page (Google Drive's quota or virus-scan page, a login or error page) standing in for one.

:func:`expected` says what a source's file must be; :func:`sniff` says what it is;
:func:`check_magic` refuses a mismatch with a message that names the file and says what to do.
The full integrity test of an archive is :func:`gfm.data.archive.verify_archive`.
"""

from __future__ import annotations

import os
import re

from gfm.core.io import IMAGE_SUFFIXES
from gfm.data.errors import ContentError

#: What a source's file may be: a zip archive, a tar archive (plain or compressed), a gzip-compressed
#: tar, a torch checkpoint (zip or legacy pickle), an image, or any bytes that are not an HTML page.
EXPECTED = ("zip", "tar", "gzip", "torch", "image", "data")
#: What :func:`sniff` finds.
SNIFFED = ("zip", "gzip", "bzip2", "xz", "tar", "torch", "image", "html", "empty", "unknown")

_ACCEPTS = {"zip": {"zip"}, "tar": {"tar", "gzip", "bzip2", "xz"}, "gzip": {"gzip"}, "torch": {"zip", "torch"},
            "image": {"image"}, "data": set(SNIFFED) - {"html", "empty"}}
_NAMES = {"zip": "a zip archive", "tar": "a tar archive", "gzip": "a gzip-compressed tar archive",
          "torch": "a torch checkpoint", "image": "an image", "data": "a data file"}
# torch.save's legacy format: pickle protocol 2, then the 10-byte magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_HEAD = 1024
_PAGE = 64 * 1024  # what is read of an HTML page to say what it is


def expected(filename: str, archive: str, *, checkpoint: bool = False) -> str:
    """What the file ``filename`` of a source must be (one of :data:`EXPECTED`).

    A declared ``archive`` decides; otherwise (``auto``/``none``) the suffix does (``.zip``,
    ``.tar.gz``/``.tgz``, ``.tar``, ``.pth``/``.pt``/``.ckpt``, image suffixes); a checkpoint
    source's file is a torch checkpoint; anything else is ``data`` (any bytes but an HTML page).
    """
    declared = {"zip": "zip", "tar": "tar", "tar.gz": "gzip"}
    if archive in declared:
        return declared[archive]
    name = filename.lower()
    for suffixes, kind in (((".zip",), "zip"), ((".tar.gz", ".tgz"), "gzip"), ((".tar",), "tar"),
                           ((".pth", ".pt", ".ckpt"), "torch"), (IMAGE_SUFFIXES, "image")):
        if name.endswith(suffixes):
            return kind
    return "torch" if checkpoint else "data"


def sniff(path: str | os.PathLike) -> str:
    """What ``path`` is by its magic number (one of :data:`SNIFFED`); a torch zip checkpoint is ``zip``."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
    if not head:
        return "empty"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    for magic, kind in ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (_TORCH_LEGACY, "torch")):
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if _is_html(head):
        return "html"
    return "unknown"


def check_magic(path: str | os.PathLike, expect: str) -> str:
    """Refuse ``path`` (:class:`ContentError`) unless its magic number fits ``expect`` (one of
    :data:`EXPECTED`); return what :func:`sniff` found."""
    if expect not in EXPECTED:
        raise ValueError(f"expect must be one of {EXPECTED}, got {expect!r}")
    found = sniff(path)
    if found in _ACCEPTS[expect]:
        return found
    if found == "html":
        with open(path, "rb") as handle:
            text = handle.read(_PAGE).decode("utf-8", "replace")
        raise ContentError(f"{path}: an HTML page where {_NAMES[expect]} was expected: {html_problem(text)}")
    if found == "empty":
        raise ContentError(f"{path}: empty file where {_NAMES[expect]} was expected")
    raise ContentError(f"{path}: {_described(found)} where {_NAMES[expect]} was expected")


def html_problem(text: str) -> str:
    """What an HTML page (or a Google Drive refusal) received in place of a file says, and what to do."""
    low = text.lower()
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    shown = f" (page title: {' '.join(title.group(1).split())!r})" if title else ""
    if "too many users have viewed or downloaded" in low or "quota exceeded" in low or "download quota" in low:
        return (f"Google Drive's download quota for this file is exceeded{shown}; wait up to 24 hours and run "
                f"again, or open the file in a browser while signed in to Google, 'Make a copy' into your "
                f"own Drive and download that copy by hand")
    if "virus scan warning" in low or "can't scan this file for viruses" in low or 'id="download-form"' in low:
        return (f"Google Drive's virus-scan page for a large file{shown}; give the source as gdrive:<file id> "
                f"(gdown confirms the page) or download the file by hand in a browser")
    if "anyone with the link" in low or "permission" in low:
        return "the file is not shared publicly, or the id is wrong; check it in a browser, or download it by hand"
    if "accounts.google.com" in low or "sign in" in low or "login" in low:
        return f"a sign-in page{shown}: the file is not public; download it by hand after signing in"
    return f"the server sent a web page instead of the file{shown}; check the URL in a browser"


def _is_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title")):
        return True
    return start.startswith(b"<") and b"<html" in start


def _described(found: str) -> str:
    return {"gzip": "a gzip file", "bzip2": "a bzip2 file", "xz": "an xz file", "zip": "a zip archive",
            "tar": "a tar archive", "torch": "a legacy torch checkpoint", "image": "an image",
            "unknown": "a file of unknown type"}[found]
