"""Stage 1 downloads: HTTP(S) with requests, Google Drive files and folders with gdown, files of a
mirror on a local disk by copy (:func:`fetch` picks by location; :func:`fetch_folder` fetches a
folder file by file, as from a mirror, :mod:`gfm.data.registry`).

Every download is staged beside its destination and lands (one rename) only after it passed
:func:`check_download`: its full length (``Content-Length``), its sha256 when one is known, else its
type by magic number (no HTML page where an archive or a checkpoint is expected) and, for an
archive, a full integrity read. An interrupted HTTP transfer is kept in ``<dest>.part`` and resumed
only when the server confirms it is the same object (``If-Range`` with the ``ETag`` or
``Last-Modified`` recorded in the sidecar ``<dest>.part.json`` when the part was started);
otherwise it restarts from zero. One overall ``deadline`` (seconds, counted from ``started``, a
:func:`time.monotonic` time, default now) bounds a download, its retries included, and a Google
Drive folder as a whole; :mod:`gfm.data.materialise` gives all the mirrors and files of a source
one deadline by passing them the same ``started``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from gfm.core.io import sha256_file, write_json
from gfm.data.archive import MAX_UNPACKED_BYTES, verify_archive
from gfm.data.content import check_magic, html_problem, sniff
from gfm.data.errors import ChecksumError, ContentError, DownloadError, UnsafeArchiveError
from gfm.data.registry import GDRIVE, GDRIVE_FOLDER

#: Default overall deadline of one download (of one source, in :mod:`gfm.data.materialise`), in
#: seconds: a slow or dripping server is cut off then; the bytes received are kept and resumed by the
#: next run.
DEADLINE = 6 * 3600.0
#: Default number of retries of a failed download after its first attempt.
RETRIES = 5
#: Default base delay of the exponential backoff between retries, in seconds.
BACKOFF = 1.0
#: Default wait for the server per request, in seconds.
TIMEOUT = 60.0


def fetch(location: str, dest: str | os.PathLike, *, sha256: str | None = None, expect: str | None = None,
          max_unpacked_bytes: int = MAX_UNPACKED_BYTES, retries: int = RETRIES, backoff: float = BACKOFF,
          timeout: float = TIMEOUT, deadline: float = DEADLINE, started: float | None = None,
          progress: bool = True) -> Path:
    """Download ``location`` to ``dest`` by the function its form names: ``gdrive:<file id>``
    (:func:`fetch_gdrive`), ``http(s)://`` (:func:`fetch_url`), anything else a local file
    (:func:`fetch_local`). Each checks the file (:func:`check_download`) before it lands."""
    checks = {"sha256": sha256, "expect": expect, "max_unpacked_bytes": max_unpacked_bytes}
    if location.startswith(GDRIVE):
        return fetch_gdrive(location[len(GDRIVE):], dest, retries=retries, timeout=timeout, deadline=deadline,
                            started=started, progress=progress, **checks)
    if location.startswith(("http://", "https://")):
        return fetch_url(location, dest, retries=retries, backoff=backoff, timeout=timeout, deadline=deadline,
                         started=started, progress=progress, **checks)
    return fetch_local(location, dest, **checks)


def fetch_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None, expect: str | None = None,
              max_unpacked_bytes: int = MAX_UNPACKED_BYTES, retries: int = RETRIES, backoff: float = BACKOFF,
              timeout: float = TIMEOUT, deadline: float = DEADLINE, started: float | None = None,
              chunk_size: int = 1 << 16, progress: bool = True, session=None) -> Path:
    """Download ``url`` to ``dest`` over HTTP(S): resumable, retried, bounded in time, checked, atomic.

    Connection errors, bodies shorter than their ``Content-Length`` (or broken off when the length is
    unknown) and 5xx answers are retried ``retries`` times with exponential backoff (``backoff *
    2**attempt`` seconds); a 4xx answer fails at once. ``timeout`` bounds each wait for the server,
    ``deadline`` the whole download (retries included) from ``started`` (default: now). ``sha256``
    and ``expect`` (one of :data:`gfm.data.content.EXPECTED`) are checked by :func:`check_download`
    before the file lands; a failed check deletes the download.
    """
    import requests
    import urllib3

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    give_up = _give_up(deadline, started, url)
    own = session is None
    session = session or requests.Session()
    attempt = 0
    try:
        while True:
            try:
                _transfer(session, url, dest, timeout=timeout, give_up=give_up, deadline=deadline,
                          chunk_size=chunk_size, progress=progress)
                break
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError, _Retry) as error:
                if attempt >= retries:
                    raise DownloadError(f"{url}: failed after {attempt + 1} attempt(s): {error}"
                                        + _kept(dest)) from error
                if time.monotonic() + backoff * 2 ** attempt > give_up:
                    raise DownloadError(_late(url, deadline, None) + _kept(dest)) from error
                time.sleep(backoff * 2 ** attempt)
                attempt += 1
    finally:
        if own:
            session.close()
    _land(_part(dest), dest, url, sha256=sha256, expect=expect, max_unpacked_bytes=max_unpacked_bytes)
    _sidecar(dest).unlink(missing_ok=True)
    return dest


def fetch_local(path: str | os.PathLike, dest: str | os.PathLike, *, sha256: str | None = None,
                expect: str | None = None, max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Copy the local file ``path`` (a mirror on a mounted disk) to ``dest`` as a download lands: staged
    in ``<dest>.part``, checked by :func:`check_download`, renamed. A missing ``path`` is a
    :class:`DownloadError` (the next location is tried)."""
    path, dest = Path(path), Path(dest)
    if not path.is_file():
        raise DownloadError(f"{path}: no such file; nothing was written to {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _discard(dest)
    shutil.copyfile(path, _part(dest))
    _land(_part(dest), dest, str(path), sha256=sha256, expect=expect, max_unpacked_bytes=max_unpacked_bytes)
    return dest


def fetch_gdrive(file_id: str, dest: str | os.PathLike, *, sha256: str | None = None, expect: str | None = None,
                 max_unpacked_bytes: int = MAX_UNPACKED_BYTES, retries: int = RETRIES, timeout: float = TIMEOUT,
                 deadline: float = DEADLINE, started: float | None = None, progress: bool = True) -> Path:
    """Download the Google Drive file ``file_id`` to ``dest`` with gdown: resumed, retried (by gdown),
    bounded by ``deadline`` from ``started`` (default: now), checked by :func:`check_download`, atomic.

    Google Drive's refusals (download quota exceeded, file not shared, a wrong id) are a
    :class:`DownloadError` saying what to do.
    """
    import gdown
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    origin, staging = f"{GDRIVE}{file_id}", dest.with_name(dest.name + ".gdown")
    give_up = _give_up(deadline, started, origin)
    cancel = threading.Event()
    timer = threading.Timer(give_up - time.monotonic(), cancel.set)
    timer.daemon = True
    timer.start()
    try:
        result = gdown.download(id=file_id, output=str(staging), quiet=not progress, resume=True, timeout=timeout,
                                retries=retries, cancel=cancel)
    except gdown.exceptions.FileURLRetrievalError as error:
        raise DownloadError(f"{origin}: Google Drive refused the download ({_gist(error)}): "
                            f"{html_problem(str(error))}; the file belongs at {dest}") from error
    except gdown.exceptions.DownloadCancelled as error:
        raise DownloadError(_late(origin, deadline, None) + f"; gdown keeps the bytes received beside {dest} "
                            f"and resumes them next time") from error
    except (gdown.exceptions.DownloadError, requests.RequestException) as error:
        raise DownloadError(f"{origin}: download failed ({_gist(error)}); nothing was written to {dest}") from error
    finally:
        timer.cancel()
    if result is None or not staging.is_file():
        raise DownloadError(f"{origin}: Google Drive refused the download (permission, quota or a wrong id); "
                            f"download it by hand to {dest}")
    _land(staging, dest, origin, sha256=sha256, expect=expect, max_unpacked_bytes=max_unpacked_bytes)
    return dest


def fetch_gdrive_folder(folder_id: str, dest: str | os.PathLike, *, sha256s: Mapping[str, str] | None = None,
                        expect: Callable[[str], str] | None = None, max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
                        retries: int = RETRIES, timeout: float = TIMEOUT, deadline: float = DEADLINE,
                        started: float | None = None, progress: bool = True) -> list[Path]:
    """Download the Google Drive folder ``folder_id`` into ``dest``; return its files.

    The folder is listed, then each file is fetched by :func:`fetch_gdrive` (``sha256s``: expected
    sha256 by relative path; ``expect``: file name -> expected content) into ``<dest>.part/``, which
    is renamed onto ``dest`` once every file landed. Files landed by an interrupted run are kept.
    ``deadline`` (from ``started``, default: now) bounds the whole folder. An existing ``dest`` is
    returned as it is (the caller verifies it; :func:`reopen_folder` lets the missing files be fetched).
    """
    import gdown
    import requests

    dest = Path(dest)
    if dest.is_dir():
        return _files(dest)
    origin, part = f"{GDRIVE_FOLDER}{folder_id}", _part(dest)
    started = time.monotonic() if started is None else started
    give_up = _give_up(deadline, started, origin)
    try:
        listing = gdown.download_folder(id=folder_id, output=str(part), quiet=not progress, skip_download=True,
                                        timeout=timeout)
    except (gdown.exceptions.DownloadError, requests.RequestException) as error:
        raise DownloadError(f"{origin}: Google Drive did not list the folder ({_gist(error)}): "
                            f"{html_problem(str(error))}; download it by hand into {dest}") from error
    if not listing:
        raise DownloadError(f"{origin}: Google Drive listed no files (permission, quota or a wrong id); "
                            f"download the folder by hand into {dest}")
    files = {entry.path: f"{GDRIVE}{entry.id}" for entry in listing}
    return _fill_folder(origin, files, dest, sha256s=sha256s, expect=expect, max_unpacked_bytes=max_unpacked_bytes,
                        retries=retries, backoff=BACKOFF, timeout=timeout, deadline=deadline, started=started,
                        give_up=give_up, progress=progress)


def fetch_folder(origin: str, files: Mapping[str, str], dest: str | os.PathLike, *,
                 sha256s: Mapping[str, str] | None = None, expect: Callable[[str], str] | None = None,
                 max_unpacked_bytes: int = MAX_UNPACKED_BYTES, retries: int = RETRIES, backoff: float = BACKOFF,
                 timeout: float = TIMEOUT, deadline: float = DEADLINE, started: float | None = None,
                 progress: bool = True) -> list[Path]:
    """Download the folder ``origin`` (named in errors), given as ``files`` = ``{relative path:
    location}`` (each fetched by :func:`fetch`; e.g. a Google Drive folder on a mirror), into
    ``dest``; return its files. Staged, resumed, bounded and checked as :func:`fetch_gdrive_folder`:
    each file lands in ``<dest>.part/``, renamed onto ``dest`` once every file landed; an existing
    ``dest`` is returned as it is."""
    dest = Path(dest)
    if dest.is_dir():
        return _files(dest)
    started = time.monotonic() if started is None else started
    give_up = _give_up(deadline, started, origin)
    return _fill_folder(origin, files, dest, sha256s=sha256s, expect=expect, max_unpacked_bytes=max_unpacked_bytes,
                        retries=retries, backoff=backoff, timeout=timeout, deadline=deadline, started=started,
                        give_up=give_up, progress=progress)


def reopen_folder(dest: str | os.PathLike) -> Path:
    """Move the files of the folder download ``dest`` back into its staging ``<dest>.part/``, merged
    with what an interrupted run left there (``dest``'s copy of a file wins), so that
    :func:`fetch_gdrive_folder` fetches only the files missing from it; return the staging folder."""
    dest = Path(dest)
    part = _part(dest)
    if part.is_symlink() or (part.exists() and not part.is_dir()):
        part.unlink()  # a file of that name is the staging of a download of the same name: stale
    if not part.exists():
        os.replace(dest, part)
        return part
    for path in _files(dest):
        target = part / path.relative_to(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(dest)
    return part


def check_download(path: str | os.PathLike, *, sha256: str | None = None, expect: str | None = None,
                   max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> None:
    """The checks a download passes before it lands (or a cached one before it is used).

    With ``sha256``: the file must match it (an HTML page is reported as such, else
    :class:`ChecksumError`); matching bytes need no further check. Without: the magic number must
    fit ``expect`` (:func:`gfm.data.content.check_magic`) and an archive (or a zip checkpoint) must
    read whole (:func:`gfm.data.archive.verify_archive`), so bad bytes are never recorded as correct.
    """
    path = Path(path)
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            if expect is not None and sniff(path) == "html":
                check_magic(path, expect)
            raise ChecksumError(f"{path}: sha256 {actual} differs from the expected {sha256}")
        return
    if expect is None:
        return
    found = check_magic(path, expect)
    if found in ("zip", "gzip", "bzip2", "xz", "tar"):
        verify_archive(path, "zip" if found == "zip" else "tar", max_unpacked_bytes=max_unpacked_bytes)


def partials(dest: str | os.PathLike) -> list[Path]:
    """The staging files of a download to ``dest`` that exist: ``<dest>.part`` and its sidecar
    (:func:`fetch_url`, or the folder of :func:`fetch_gdrive_folder`), ``<dest>.gdown`` and gdown's
    own ``<dest>.gdown<8 characters>.part`` (:func:`fetch_gdrive`)."""
    dest = Path(dest)
    found = [p for p in (_part(dest), _sidecar(dest), dest.with_name(dest.name + ".gdown"))
             if p.exists() or p.is_symlink()]
    if dest.parent.is_dir():
        prefix = dest.name + ".gdown"
        found += sorted(p for p in dest.parent.iterdir()
                        if p.name.startswith(prefix) and p.name.endswith(".part")
                        and len(p.name) == len(prefix) + 8 + len(".part"))
    return found


def discard_unresumable(dest: str | os.PathLike) -> list[Path]:
    """Delete ``<dest>.part`` when no sidecar says which object it holds (it could not be resumed
    safely), and a sidecar without its part; return what was deleted."""
    dest = Path(dest)
    part, sidecar = _part(dest), _sidecar(dest)
    gone = []
    if part.is_file() and _validator(dest, None) is None:
        gone.append(part)
    if sidecar.exists() and not part.is_file():
        gone.append(sidecar)
    for path in gone:
        path.unlink()
    return gone


# --- helpers -------------------------------------------------------------------------------------

def _fill_folder(origin: str, files: Mapping[str, str], dest: Path, *, sha256s, expect, give_up: float,
                 deadline: float, **fetching) -> list[Path]:
    """Fetch every file of ``files`` (relative path -> location) missing from ``<dest>.part/``, then
    rename the staging onto ``dest``; a deadline passed names how many files landed."""
    part = _part(dest)
    rels = {Path(rel): location for rel, location in files.items()}
    for rel in rels:
        if rel.is_absolute() or ".." in rel.parts:
            raise DownloadError(f"{origin}: listed file {rel.as_posix()!r} would land outside {dest}")
    for rel, location in rels.items():
        if (part / rel).is_file():
            continue
        try:
            fetch(location, part / rel, sha256=(sha256s or {}).get(rel.as_posix()),
                  expect=expect(rel.name) if expect else None, deadline=deadline, **fetching)
        except DownloadError as error:
            if isinstance(error, ChecksumError) or time.monotonic() < give_up:
                raise
            landed = sum((part / r).is_file() for r in rels)
            raise DownloadError(_late(origin, deadline, None) + f"; {landed} of its {len(rels)} files landed, kept "
                                f"in {part} for the next run; nothing was written to {dest}") from error
    os.replace(part, dest)
    return _files(dest)


class _Retry(Exception):
    """A transient failure worth another attempt (5xx, short body, bad resume)."""


def _transfer(session, url: str, dest: Path, *, timeout: float, give_up: float, deadline: float,
              chunk_size: int, progress: bool) -> None:
    """One attempt: resume ``<dest>.part`` (when its object is confirmed) or start it; raise on failure."""
    import urllib3
    from tqdm import tqdm

    part = _part(dest)
    offset = part.stat().st_size if part.is_file() else 0
    validator = _validator(dest, url) if offset else None
    if offset and validator is None:  # nothing says the part holds the object the server has now
        part.unlink()
        offset = 0
    headers = {"Accept-Encoding": "identity"}  # byte offsets must be those of the bytes on disk
    if offset:
        headers.update({"Range": f"bytes={offset}-", "If-Range": validator})
    read_timeout = max(min(timeout, give_up - time.monotonic()), 0.001)
    with session.get(url, headers=headers, stream=True, timeout=(timeout, read_timeout)) as response:
        status = response.status_code
        if status == 416 and offset:  # the partial file is already complete (or longer)
            if _content_range_total(response.headers.get("Content-Range", "")) == offset:
                return
            _discard(dest)
            raise _Retry(f"HTTP 416 with a {offset}-byte partial file; restarting")
        if status >= 500:
            raise _Retry(f"HTTP {status} {response.reason}")
        if status >= 400:
            _discard(dest)
            raise DownloadError(f"{url}: HTTP {status} {response.reason} (not retried); nothing was written to {dest}")
        if status == 206 and _content_range_start(response.headers.get("Content-Range", "")) != offset:
            _discard(dest)
            raise _Retry(f"{url}: Content-Range does not start at byte {offset}; restarting")
        start = offset if status == 206 else 0
        if status != 206:  # a new object, or the whole of a changed one: remember what it is
            _remember(dest, url, response.headers)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as f, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=dest.name, disable=not progress, leave=False) as bar:
            try:
                while chunk := response.raw.read1(chunk_size, decode_content=False):
                    f.write(chunk)
                    bar.update(len(chunk))
                    if time.monotonic() > give_up:
                        f.flush()
                        raise DownloadError(_late(url, deadline, part.stat().st_size, total) + _kept(dest))
            except urllib3.exceptions.ProtocolError as error:
                if total is None:  # nothing else can tell a complete body from a cut one
                    f.flush()
                    raise _Retry(f"the body broke off after {part.stat().st_size} bytes and its length is "
                                 f"unknown (no Content-Length): {error}") from error
                if "IncompleteRead" not in str(error):
                    raise
                # the length is known: the size check below reports the missing bytes
    if total is not None and part.stat().st_size != total:
        raise _Retry(f"the body ended after {part.stat().st_size} of the {total} bytes of its Content-Length")


def _land(staging: Path, dest: Path, origin: str, *, sha256, expect, max_unpacked_bytes) -> None:
    """Check the complete ``staging`` file, then rename it onto ``dest``; a failed check deletes it."""
    try:
        check_download(staging, sha256=sha256, expect=expect, max_unpacked_bytes=max_unpacked_bytes)
    except (ChecksumError, ContentError, UnsafeArchiveError) as error:
        _discard(dest)
        staging.unlink(missing_ok=True)
        problem = str(error).removeprefix(f"{staging}: ")
        raise type(error)(f"{origin}: {problem}; the download was deleted and nothing was written to {dest}") from error
    os.replace(staging, dest)


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _remember(dest: Path, url: str, headers) -> None:
    """Record the strong ``ETag`` (else ``Last-Modified``) of the object the part is started from."""
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if validator:
        write_json(_sidecar(dest), {"url": url, "validator": validator})
    else:
        _sidecar(dest).unlink(missing_ok=True)


def _validator(dest: Path, url: str | None) -> str | None:
    """The validator recorded for ``<dest>.part`` (for ``url`` when given), or None."""
    try:
        meta = json.loads(_sidecar(dest).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or (url is not None and meta.get("url") != url):
        return None
    return meta.get("validator") or None


def _discard(dest: Path) -> None:
    _part(dest).unlink(missing_ok=True)
    _sidecar(dest).unlink(missing_ok=True)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _give_up(deadline: float, started: float | None, origin: str) -> float:
    """The :func:`time.monotonic` time a download must be complete by; refuse one whose time is up."""
    give_up = (time.monotonic() if started is None else started) + deadline
    if time.monotonic() >= give_up:
        raise DownloadError(_late(origin, deadline, None) + "; not started")
    return give_up


def _late(origin: str, deadline: float, received: int | None, total: int | None = None) -> str:
    got = "" if received is None else f" ({received} of {total if total is not None else '?'} bytes received)"
    return (f"{origin}: not complete after the deadline of {deadline:g} s{got}; the server is too slow "
            f"(for a slow connection, raise data.deadline in params.yaml, in seconds, or pass a larger "
            f"deadline= to gfm.data.materialise.run_download)")


def _kept(dest: Path) -> str:
    """Where the bytes of a failed transfer are kept for the next run (a part without a validator is
    deleted: it could not be resumed safely)."""
    part = _part(dest)
    if not part.is_file() or _validator(dest, None) is None:
        _discard(dest)
        return f"; nothing was written to {dest}"
    return (f"; the {part.stat().st_size} bytes received are kept in {part} and resumed next time "
            f"if the server still has the same object; nothing was written to {dest}")


def _gist(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("..." if len(text) > 300 else "") or type(error).__name__


def _content_range_start(value: str) -> int | None:
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> int | None:
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None
