"""Stage 1 — the datasets of the paper (Sect. 5.1 AM-2k / PM-10k, Sect. 4.1 BG-20k, MS COCO for the
COMP-COCO track of Sect. 5.1) and the released GFM checkpoints, downloaded safely or materialised
from the embedded world.

Two sources feed the same datasets folder (the layout of :mod:`gfm.core.layout`):

* ``embedded`` (default): the committed synthetic world in ``data/`` is linked (hard links, or
  copies across file systems) into ``<datasets>/``;
* ``real``: the sources of :data:`gfm.data.registry.REGISTRY` are downloaded into ``downloads/``
  (:mod:`gfm.data.fetch`: resumed, retried, checked before they land and before their sha256 is
  recorded in the lock file), unpacked safely (:mod:`gfm.data.archive`), and mapped from their
  official layout into ours: AM-2k into ``am2k/``, P3M-10k into ``pm10k/`` (``train``,
  ``validation`` = P3M-500-P, ``validation_np`` = P3M-500-NP), BG-20k as released into
  ``bg20k/{train,testval}``, COCO into ``coco/``. A file source Google Drive refuses (quota) can be
  downloaded by hand and placed in ``downloads/`` under its registry ``filename``: it is checked
  like a download before its sha256 is recorded. A mirror of the downloads (``GFM_MIRROR``, see
  :mod:`gfm.data.registry`) is tried before each source's own URLs.

Either way every image/alpha pair of a matting set is validated (:mod:`gfm.data.validate`) and the
datasets folder is built in a temporary sibling and renamed into place, so an interrupted run never
leaves a half-built folder; the staging left by a killed run is removed by the next one
(:func:`gfm.core.io.clean_stale_staging`). A cached download that is bad is reported once, with the
way to refresh it: ``refresh=True``, or :func:`forget`. Nothing in an unpacked or placed tree is
followed through a symbolic link.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gfm.core import layout
from gfm.core.io import atomic_dir, clean_stale_staging, sha256_file, write_json
from gfm.data import registry
from gfm.data.archive import MAX_UNPACKED_BYTES, archive_kind, link_or_copy, unpack
from gfm.data.content import expected
from gfm.data.errors import ChecksumError, ContentError, DataError, DownloadError, UnsafeArchiveError
from gfm.data.fetch import (BACKOFF, DEADLINE, RETRIES, TIMEOUT, check_download, discard_unresumable, fetch,
                            fetch_folder, fetch_gdrive_folder, partials, reopen_folder)
from gfm.data.registry import (BENCHMARKS, BG20K_SET, BG20K_SPLITS, EMBEDDED, GDRIVE_FOLDER, MATTING_SPLITS,
                               MIRROR_ENV, MIRROR_LOCK, PRETRAINED, REGISTRY, Source)
from gfm.data.validate import validate_pairs

#: Name of the report written into the datasets folder.
SUMMARY = "summary.json"


def run_download(*, source: str, datasets_out: str | os.PathLike, data_root: str | os.PathLike,
                 downloads: str | os.PathLike, lock_file: str | os.PathLike, sources: str | Sequence[str],
                 strict: bool, max_unpacked_bytes: int = MAX_UNPACKED_BYTES, retries: int | None = None,
                 backoff: float = BACKOFF, timeout: float = TIMEOUT, deadline: float | None = None,
                 refresh: bool = False, link: bool = True, metrics_out: str | os.PathLike | None = None,
                 progress: bool = True, mirror: str | None = None) -> dict:
    """Stage 1: build ``datasets_out`` from the embedded world or from the paper's real sources.

    The stage's knobs (params.yaml ``data``, :class:`gfm.core.config.DataConfig`) are required here;
    the download tuning has the library defaults of :mod:`gfm.data.fetch`.

    Parameters
    ----------
    source : ``embedded`` (link ``data_root`` into ``datasets_out``) or ``real`` (download ``sources``).
    datasets_out : the datasets folder (replaced atomically).
    data_root : the embedded world (``world.json`` must exist).
    downloads : cache of downloads and unpacked archives (real sources only).
    lock_file : JSON of the sha256 of every downloaded file (recorded on first download; commit it).
    sources : registry names, as a sequence or a comma-separated string (real sources only).
    strict : orphans, unreadable, ambiguous or size-mismatched pairs raise :class:`DataError` (else
        they are dropped with a warning).
    max_unpacked_bytes : refuse archives whose members add up to more than this.
    retries, backoff, timeout, deadline : download retries after the first attempt (None:
        :data:`gfm.data.fetch.RETRIES`), base delay in seconds of the exponential backoff, the wait
        for the server per request, and the overall bound in seconds of the download of one source,
        every mirror, file and retry included (None: :data:`gfm.data.fetch.DEADLINE`).
    refresh : forget the cached downloads of ``sources`` (files, unpacked folders, lock entries)
        and download them again (:func:`forget`).
    link : hard-link files when possible (copy otherwise).
    metrics_out : optional JSON of the counts for ``dvc metrics``.
    progress : show progress bars for downloads.
    mirror : a mirror of the downloads tried before each source's URLs (:func:`download`); None: the
        environment variable ``GFM_MIRROR``, ``""``: none.

    Returns
    -------
    report : dict with ``source``, ``datasets``, ``counts`` (files per set/split), ``benchmarks``
        (validated pairs per benchmark present, :data:`gfm.data.registry.BENCHMARKS`), ``warnings``,
        ``converted``, ``dropped`` and, for real sources, ``downloads`` (name -> unpacked root).
    """
    for target in (datasets_out, metrics_out):
        if target is not None:
            clean_stale_staging(target)
    if source == "embedded":
        world = Path(data_root)
        if not (world / "world.json").is_file():
            raise DataError(f"{world}: no world.json; build the embedded world first (gfm world build --out {world})")
        report = materialise({EMBEDDED.name: world}, datasets_out, strict=strict, link=link)
    elif source == "real":
        roots = download(sources, downloads, lock_file=lock_file, retries=RETRIES if retries is None else retries,
                         backoff=backoff, timeout=timeout, deadline=DEADLINE if deadline is None else deadline,
                         max_unpacked_bytes=max_unpacked_bytes, refresh=refresh, progress=progress, mirror=mirror)
        report = materialise(roots, datasets_out, strict=strict, link=link)
        report["downloads"] = {name: str(path) for name, path in roots.items()}
    else:
        raise ValueError(f"source must be 'embedded' or 'real', got {source!r}")
    report["source"] = source
    if metrics_out is not None:
        write_json(metrics_out, {"source": source, "counts": report["counts"], "benchmarks": report["benchmarks"],
                                 "warnings": len(report["warnings"]), "converted": report["converted"],
                                 "dropped": report["dropped"]})
    return report


def download(sources: str | Sequence[str | Source], downloads: str | os.PathLike, *,
             lock_file: str | os.PathLike, retries: int = RETRIES, backoff: float = BACKOFF,
             timeout: float = TIMEOUT, deadline: float = DEADLINE, max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
             refresh: bool = False, progress: bool = True, mirror: str | None = None) -> dict[str, Path]:
    """Download, verify and unpack ``sources``; return each source's unpacked root.

    A download already present and matching its sha256 is not fetched again (one that differs is
    fetched again, with a warning; a Google Drive folder missing files of the lock file gets them
    fetched again); an archive already unpacked from the same bytes is not unpacked again. A file
    without a known sha256 is checked whole (type, archive integrity) before its sha256 is recorded
    in ``lock_file``. A cached file that fails its checks raises one :class:`ContentError` saying
    how to refresh it (``refresh=True`` here, or :func:`forget`). ``deadline`` bounds each source
    as a whole: its mirrors, files and retries share it.

    ``mirror`` (None: the environment variable ``GFM_MIRROR``; ``""``: none) is a base URL or a local
    folder tried before each source's URLs: file ``<file>`` of source ``<source>`` at
    ``<mirror>/<source>/<file>`` (:func:`gfm.data.registry.mirror_location`). A file the mirror lacks
    is fetched from the source's URLs; a file it serves is checked and locked as any download (on a
    first download against the sha256 the mirror's own lock file records, when it has one).

    Returns
    -------
    roots : ``{name: path}`` — the unpacked folder (``<downloads>/<name>.unpacked``) or, for a
        source that is not an archive, the downloaded file itself.
    """
    downloads = Path(downloads)
    chosen = registry.sources(sources)
    clean_stale_staging(lock_file)
    fetching = {"retries": retries, "timeout": timeout, "deadline": deadline,  # fetch_url also gets backoff
                "max_unpacked_bytes": max_unpacked_bytes, "progress": progress}  # (gdown backs off by itself)
    mirror_base = registry.mirror(mirror)
    lab = _Mirror(mirror_base, timeout) if mirror_base else None
    roots = {}
    for source in chosen:
        if refresh:
            forget(source, downloads, lock_file)
        target, unpacked = downloads / source.filename, downloads / f"{source.name}.unpacked"
        for path in (target, unpacked):
            clean_stale_staging(path)
        discard_unresumable(target)
        shas = _download_source(source, downloads, lock_file, fetching, backoff, lab)
        base = target if target.is_dir() else downloads
        hashes = {p.relative_to(base).as_posix(): sha for p, sha in shas.items()}
        try:
            kinds = [(p, p.relative_to(base), archive_kind(p, source.archive)) for p in shas]
            if len(kinds) == 1 and kinds[0][2] == "none":
                roots[source.name] = kinds[0][0]
                continue
            roots[source.name] = unpack(kinds, unpacked, hashes, max_unpacked_bytes=max_unpacked_bytes)
        except ContentError as error:
            raise ContentError(f"{error}\n  {_refresh_hint(source, downloads, lock_file)}") from error
    return roots


def forget(source: str | Source, downloads: str | os.PathLike, lock_file: str | os.PathLike) -> list[Path]:
    """Delete what stage 1 keeps of ``source``: its download in ``downloads`` (file or folder), the
    partial downloads beside it, its unpacked folder, and its entries in ``lock_file``; the next
    :func:`download` fetches it anew and records its new sha256. Returns the paths deleted."""
    source = registry.sources([source])[0]
    target = Path(downloads) / source.filename
    gone = [p for p in (target, Path(downloads) / f"{source.name}.unpacked", *partials(target))
            if p.exists() or p.is_symlink()]
    for path in gone:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    registry.forget_lock(lock_file, source.name)
    return gone


def materialise(roots: Mapping[str, str | os.PathLike], datasets_out: str | os.PathLike, *,
                strict: bool, link: bool = True, known_sources: Mapping[str, Source] | None = None) -> dict:
    """Map unpacked sources into the datasets folder, validate every matting pair, swap it in.

    Parameters
    ----------
    roots : ``{source name: unpacked root}`` (as :func:`download` returns; ``embedded`` -> ``data/``).
    datasets_out : the datasets folder; built in a temporary sibling and renamed into place (an
        existing folder is replaced only once the new one is complete).
    strict : see :func:`gfm.data.validate.validate_pairs`.
    link : hard-link files when possible (copy across file systems or when False).
    known_sources : sources by name (default: :data:`REGISTRY` plus :data:`EMBEDDED`).

    Returns
    -------
    report : ``counts`` (files per set/split), ``benchmarks`` (pairs per benchmark present),
        ``splits`` (per-split validation reports), ``warnings``, ``converted``, ``dropped``; also
        written to ``<datasets_out>/summary.json``.
    """
    known = dict(known_sources) if known_sources is not None else {**REGISTRY, EMBEDDED.name: EMBEDDED}
    out = Path(datasets_out)
    with atomic_dir(out) as tmp:
        placed: dict[Path, Path] = {}
        for name, root in roots.items():
            if name not in known:
                raise ValueError(f"roots: unknown source {name!r} (known: {', '.join(sorted(known))})")
            _place(known[name], Path(root), tmp, placed, link=link)
        report = {"datasets": str(out), "counts": {}, "splits": {}, "warnings": [], "converted": 0, "dropped": 0}
        for set_name, splits in MATTING_SPLITS.items():
            for split in splits:
                split_dir = tmp / set_name / split
                if not split_dir.exists():
                    continue
                key = f"{set_name}/{split}"
                split_report = validate_pairs(split_dir, strict=strict)
                report["splits"][key] = split_report
                report["counts"][key] = split_report["pairs"]
                report["warnings"] += [f"{key}: {w}" for w in split_report["warnings"]]
                report["converted"] += split_report["converted"]
                report["dropped"] += split_report["dropped"]
        for folder in (layout.BG_CANDIDATES, *(f"{BG20K_SET}/{split}" for split in BG20K_SPLITS), layout.COCO,
                       PRETRAINED):
            if (tmp / folder).is_dir():
                report["counts"][folder] = sum(1 for p in (tmp / folder).iterdir() if not p.name.startswith("."))
        report["benchmarks"] = {name: report["counts"][folder] for name, (folder, _) in BENCHMARKS.items()
                                if folder in report["counts"]}
        write_json(tmp / SUMMARY, report)
    return report


# --- helpers -------------------------------------------------------------------------------------

def _download_source(source: Source, downloads: Path, lock_file, fetching: dict, backoff: float,
                     mirror: _Mirror | None) -> dict[Path, str]:
    """Download (or reuse) the files of ``source``, trying the mirror and then its URLs in order within
    one deadline (``fetching["deadline"]``, counted from now for every origin and file); return
    ``{path: sha256}``. When every origin fails, the error says how to place the file by hand
    (:func:`_by_hand`)."""
    if not source.urls and mirror is None:
        raise DownloadError(f"source {source.name!r} has no URL: {_by_hand(source, downloads)}")
    expect = functools.partial(_expected, source)
    fetching = {**fetching, "started": time.monotonic()}
    errors: list[DataError] = []
    for origin in (*([mirror] if mirror else []), *source.urls):
        try:
            if _is_folder(source):
                return _folder_source(source, origin, downloads, lock_file, expect, fetching, backoff)
            return _file_source(source, origin, downloads, lock_file, expect, fetching, backoff)
        except (ChecksumError, UnsafeArchiveError):
            raise
        except (DownloadError, ContentError) as error:
            errors.append(error)
    hint = f"or {_by_hand(source, downloads)}"
    if len(errors) == 1:
        raise type(errors[0])(f"{errors[0]}\n  {hint}") from errors[0]
    raise DownloadError(f"source {source.name!r}: every URL failed:\n  " + "\n  ".join(map(str, errors))
                        + f"\n  {hint}")


class _Mirror:
    """The mirror of the downloads at ``base`` (:func:`gfm.data.registry.mirror`) and, read on first
    use, the lock file at its root (:data:`gfm.data.registry.MIRROR_LOCK`; empty when it has none)."""

    def __init__(self, base: str, timeout: float):
        self.base, self.timeout = base, timeout
        self.remote = base.startswith(("http://", "https://"))
        self.lock_location = registry.mirror_location(base, MIRROR_LOCK)

    def location(self, source: Source, file: str) -> str:
        return registry.mirror_location(self.base, f"{source.name}/{file}")

    @functools.cached_property
    def lock(self) -> dict:
        location = self.lock_location
        try:
            if not self.remote:
                return registry.read_lock(location)
            import requests

            response = requests.get(location, timeout=self.timeout)
            if response.status_code == 404:
                return {"version": 1, "files": {}}
            response.raise_for_status()
            return registry.parse_lock(response.text, location)
        except (OSError, DataError) as error:  # requests' errors are OSErrors
            warnings.warn(f"{MIRROR_ENV} mirror {self.base}: its lock file {location} is unusable ({error}); "
                          f"its files are fetched without it")
            return {"version": 1, "files": {}}

    def listing(self, source: Source, shas: dict[str, str]) -> dict[str, str | None]:
        """``{file: sha256 or None}`` of the folder source ``source`` on the mirror: the files of
        ``lock_file`` (``shas``), else of the mirror's lock file, else (a mirror on disk) its folder."""
        listed = dict(shas) or registry.locked(self.lock, source.name)
        if listed or self.remote:
            if not listed:
                raise DownloadError(f"{MIRROR_ENV} mirror {self.base}: lists no file of {source.name!r} "
                                    f"(its {MIRROR_LOCK} records none)")
            return listed
        folder = Path(self.location(source, ""))
        listed = {p.relative_to(folder).as_posix(): None for p in sorted(folder.rglob("*"))
                  if p.is_file() and not p.name.startswith(".")} if folder.is_dir() else {}
        if not listed:
            raise DownloadError(f"{MIRROR_ENV} mirror {self.base}: lists no file of {source.name!r} (its "
                                f"{MIRROR_LOCK} records none and {folder} holds none)")
        return listed


def _by_hand(source: Source, downloads: Path) -> str:
    """How to place ``source`` by hand: where to get it, what to accept, where to put it."""
    where = f"from {source.page}" if source.page else "from its official page"
    agreement = f" (after accepting {source.licence})" if source.licence else ""
    if _is_folder(source):
        return (f"download the files of {source.title} {where}{agreement} into {downloads / source.filename}/ "
                f"(the folder as it is on Google Drive) and run again")
    return (f"download {source.filename} {where}{agreement}, place it at {downloads / source.filename} "
            f"and run again: it is checked like a download before its sha256 is recorded")


def _expected(source: Source, filename: str) -> str:
    return expected(filename, source.archive, checkpoint=source.kind == "checkpoint")


def _is_folder(source: Source) -> bool:
    """A source whose download is a folder of files (a Google Drive folder)."""
    return any(url.startswith(GDRIVE_FOLDER) for url in source.urls)


def _file_source(source: Source, origin: str | _Mirror, downloads: Path, lock_file, expect: Callable[[str], str],
                 fetching: dict, backoff: float) -> dict[Path, str]:
    dest = downloads / source.filename
    url = origin.location(source, source.filename) if isinstance(origin, _Mirror) else origin
    sha, where = source.sha256, "registry"
    if sha is None:
        sha, where = registry.locked(lock_file, source.name).get(source.filename), lock_file
    if sha is None and isinstance(origin, _Mirror):
        sha, where = registry.locked(origin.lock, source.name).get(source.filename), origin.lock_location
    if dest.is_file():
        if sha is None:
            _check_cached(source, dest, expect(dest.name), downloads, lock_file, fetching)
        elif sha256_file(dest) != sha:
            warnings.warn(f"{dest}: sha256 differs from the expected one ({where}); downloading it again")
            dest.unlink()
    if not dest.is_file():
        fetch(url, dest, sha256=sha, expect=expect(dest.name), backoff=backoff, **fetching)
    actual = sha or sha256_file(dest)
    registry.record_lock(lock_file, source.name, source.filename, sha256=actual, size=dest.stat().st_size, url=url)
    return {dest: actual}


def _folder_source(source: Source, origin: str | _Mirror, downloads: Path, lock_file, expect: Callable[[str], str],
                   fetching: dict, backoff: float) -> dict[Path, str]:
    """A folder (of Google Drive, or on the mirror): a cached folder is checked against the lock file
    (files whose sha256 differs and files missing from it are fetched again, the others kept), then
    completed."""
    folder = downloads / source.filename
    shas = registry.locked(lock_file, source.name)
    if folder.is_dir():
        present = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        stale = []
        for rel, path in present.items():
            if rel not in shas:
                _check_cached(source, path, expect(path.name), downloads, lock_file, fetching)
            elif sha256_file(path) != shas[rel]:
                stale.append(path)
        missing = sorted(set(shas) - set(present))
        if stale or missing:  # fetched again into the folder's staging, the other files kept
            problems = [f"sha256 of {', '.join(p.name for p in stale)} differs from {lock_file}"] if stale else []
            problems += [f"{', '.join(missing)} recorded in {lock_file} missing"] if missing else []
            warnings.warn(f"{folder}: {'; '.join(problems)}; downloading again")
            for path in stale:
                path.unlink()
            reopen_folder(folder)
    if isinstance(origin, _Mirror):
        url = origin.location(source, "").rstrip("/\\")
        listed = {} if folder.is_dir() else origin.listing(source, shas)
        locations = {rel: origin.location(source, rel) for rel in listed}
        expected_shas = {**{rel: sha for rel, sha in listed.items() if sha}, **shas}
        files = fetch_folder(url, locations, folder, sha256s=expected_shas, expect=expect, backoff=backoff, **fetching)
    else:
        url, locations = origin, {}
        files = fetch_gdrive_folder(url[len(GDRIVE_FOLDER):], folder, sha256s=shas, expect=expect, **fetching)
    found = {}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        found[path] = shas.get(rel) or sha256_file(path)
        registry.record_lock(lock_file, source.name, rel, sha256=found[path], size=path.stat().st_size,
                             url=locations.get(rel, url))
    gone = sorted(set(shas) - {path.relative_to(folder).as_posix() for path in files})
    if gone:
        raise DownloadError(f"{url}: the folder no longer holds {', '.join(gone)}, recorded in "
                            f"{lock_file}: the release changed\n  {_refresh_hint(source, downloads, lock_file)}")
    return found


def _check_cached(source: Source, path: Path, expect: str, downloads: Path, lock_file, fetching: dict) -> None:
    """A cached file the lock file knows nothing of (placed by hand, or landed by a run killed before
    it was recorded) must pass :func:`gfm.data.fetch.check_download` before it is recorded."""
    try:
        check_download(path, expect=expect, max_unpacked_bytes=fetching["max_unpacked_bytes"])
    except (ContentError, UnsafeArchiveError) as error:
        raise type(error)(f"cached download {error}\n  {_refresh_hint(source, downloads, lock_file)}") from error


def _refresh_hint(source: Source, downloads: Path, lock_file) -> str:
    return (f"to download {source.name!r} again, pass refresh=True (run_download or download), or call "
            f"gfm.data.materialise.forget({source.name!r}, {str(downloads)!r}, {str(lock_file)!r}), which deletes "
            f"its files in {downloads}, their partial downloads, its unpacked folder and its lock entries")


def _find_root(source: Source, root: Path, max_depth: int = 3) -> Path:
    """The official root inside ``root``: the shallowest folder holding ``source.marker``, reached
    without following a symbolic link."""
    if source.marker is None or root.is_file():
        return root
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if _exists_without_links(folder, source.marker):
                return folder
        level = sorted(p for f in level for p in f.iterdir()
                       if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    raise DataError(f"{root}: no {source.marker!r} found within {max_depth} folder level(s); "
                    f"is this {source.title}?")


def _exists_without_links(folder: Path, rel: str) -> bool:
    path = folder
    for part in Path(rel).parts:
        path = path / part
        if path.is_symlink() or not path.exists():
            return False
    return True


def _refuse_links(source: Source, base: Path) -> None:
    """Refuse a tree holding a symbolic link (outside hidden entries): it could lead out of the tree."""
    pending = [base]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():
                    raise DataError(f"{entry.path}: a symbolic link in the tree of source {source.name!r}; links "
                                    f"are not followed: replace it by the file or folder it points to")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))


def _place(source: Source, root: Path, out: Path, placed: dict[Path, Path], *, link: bool) -> None:
    if not root.exists():
        raise DataError(f"{root}: source {source.name!r} not found")
    base = _find_root(source, root)
    if base.is_dir():
        _refuse_links(source, base)
    for pattern, destination in source.layout:
        files = _layout_files(base, pattern)
        single = Path(destination).suffix != ""
        if not files:
            raise DataError(f"{base}: {pattern!r} is missing or empty (layout of {source.title})")
        if single and len(files) != 1:
            raise DataError(f"{base}: {pattern!r} matches {len(files)} files, expected exactly one")
        for src, rel in files:
            target = out / destination if single else out / destination / rel
            if target in placed:
                raise DataError(f"{target.relative_to(out)}: both {placed[target]} and {src} map there")
            placed[target] = src
            link_or_copy(src, target, link=link)


def _layout_files(base: Path, pattern: str) -> list[tuple[Path, Path]]:
    if base.is_file():
        return [(base, Path(base.name))] if fnmatch.fnmatch(base.name, pattern) else []
    if any(c in pattern for c in "*?["):
        return [(p, Path(p.name)) for p in sorted(base.rglob(pattern))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)]
    path = base / pattern
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        return [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    return []
