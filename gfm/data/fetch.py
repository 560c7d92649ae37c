"""Stage 1 — the datasets of the paper (Sect. 5.1 AM-2k / PM-10k, Sect. 4.2 BG-20k, MS COCO) and the
released GFM checkpoints, downloaded safely or materialised from the embedded world.

Two sources feed the same datasets folder (the layout of :mod:`gfm.core.layout`):

* ``embedded`` (default): the committed synthetic world in ``data/`` is linked (hard links, or
  copies across file systems) into ``<datasets>/``;
* ``real``: the sources of :data:`REGISTRY` are downloaded into ``downloads/`` (resumed, retried,
  sha256-verified against the registry or the committed lock file ``data.lock.json``), unpacked
  by a safe extractor, and mapped from their official layout into ours.

Either way every image/alpha pair of a matting set is validated (:func:`validate_pairs`) and the
datasets folder is built in a temporary sibling and renamed into place, so an interrupted run never
leaves a half-built folder. :func:`run_download` is the stage entry point; :func:`summarise`,
:func:`plot_samples` and :func:`plot_resolutions` are the notebook's table and figures.

Public API
----------
:data:`REGISTRY`, :data:`EMBEDDED`, :class:`Source`, :func:`run_download`, :func:`download`,
:func:`materialise`, :func:`fetch_url`, :func:`fetch_gdrive`, :func:`extract_archive`,
:func:`validate_pairs`, :func:`summarise`, :func:`registry_table`, :func:`plot_samples`,
:func:`plot_resolutions`, :func:`sha256_file`, :func:`read_lock`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import shutil
import stat
import tarfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from gfm.core import layout
from gfm.core.io import (ImageError, sha256_file, alpha_conversion, atomic_dir, list_images, read_alpha, read_image, write_image,
                    write_json)

#: Folder of the released checkpoints inside the datasets folder (``<datasets>/pretrained/<name>.pth``).
PRETRAINED = "pretrained"
#: The portrait matting set (PM-10k, publicly released as P3M-10k) inside the datasets folder.
PORTRAIT_SET = "pm10k"
#: Matting sets whose splits :func:`materialise` validates pair by pair.
MATTING_SETS = (layout.MATTING_SET, PORTRAIT_SET)
#: Per-image companions of a split that must match the image in name and size when present.
COMPANIONS = ("trimap", "fg", "bg")
#: Companions that are single-channel 8-bit maps (converted like the masks when they are not).
ALPHA_LIKE = ("mask", "trimap")
#: Name of the report written into the datasets folder.
SUMMARY = "summary.json"
ARCHIVES = ("zip", "tar", "tar.gz", "none", "auto")
_GDRIVE, _GDRIVE_FOLDER = "gdrive:", "gdrive-folder:"
_STAMP = ".gfm-unpacked.json"


class DataError(ValueError):
    """A dataset that cannot be used as it is; the message names the file and the problem."""


class DownloadError(DataError):
    """A download that failed (HTTP error, connection lost after every retry, Google Drive refusal)."""


class ChecksumError(DownloadError):
    """A downloaded file whose sha256 differs from the registry or the lock file."""


class UnsafeArchiveError(DataError):
    """An archive member that would land outside the target folder, a device file, or a bomb."""


@dataclass(frozen=True)
class Source:
    """One downloadable source: where it lives, how to check it, how it maps into our layout.

    Parameters
    ----------
    name : registry key (``am2k``, ``bg20k``, ``coco``, ``p3m10k``, ``gfm_r34_tt``, ...).
    title : human-readable name.
    urls : mirrors tried in order: ``https://...`` (requests), ``gdrive:<file id>`` or
        ``gdrive-folder:<folder id>`` (gdown).
    filename : name of the download in the downloads folder (a folder for ``gdrive-folder:``).
    archive : ``zip`` | ``tar`` | ``tar.gz`` | ``none`` | ``auto`` (sniffed: zip or tar archives are
        unpacked, anything else — e.g. a torch checkpoint — kept as it is). For a Google Drive
        folder it applies to each downloaded file.
    sha256 : expected checksum of ``filename`` when known; otherwise it is recorded on first download
        in the lock file (for a folder: one entry per downloaded file).
    marker : path (relative to the official root) whose presence locates the official root inside
        the unpacked tree (which may add wrapper folders such as ``AM-2k/``).
    layout : ``(source, destination)`` pairs: ``source`` relative to the official root (a folder,
        a file, or a glob pattern), ``destination`` relative to the datasets folder (a folder, or a
        file path when it has a suffix and exactly one file matches).
    kind : ``dataset`` | ``checkpoint``.
    backbone, rosta : for checkpoints, the GFM variant (``r34``, ``r34_2b``, ``d121``, ``r101``;
        ``TT``, ``FT``, ``BT``, ``RIM``).
    paper : where the paper introduces or uses it.
    licence : the release agreement or licence to accept before downloading.
    """

    name: str
    title: str
    urls: tuple[str, ...]
    filename: str
    archive: str
    layout: tuple[tuple[str, str], ...]
    sha256: str | None = None
    marker: str | None = None
    kind: str = "dataset"
    backbone: str | None = None
    rosta: str | None = None
    paper: str = ""
    licence: str = ""

    def __post_init__(self):
        if self.archive not in ARCHIVES:
            raise ValueError(f"source {self.name!r}: archive must be one of {ARCHIVES}, got {self.archive!r}")
        if self.kind not in ("dataset", "checkpoint"):
            raise ValueError(f"source {self.name!r}: kind must be 'dataset' or 'checkpoint', got {self.kind!r}")
        for url in self.urls:
            if not url.startswith(("http://", "https://", _GDRIVE, _GDRIVE_FOLDER)):
                raise ValueError(f"source {self.name!r}: unsupported URL {url!r} "
                                 f"(expected http(s)://, {_GDRIVE}<id> or {_GDRIVE_FOLDER}<id>)")


_AM2K_SPLITS = tuple((f"{split}/{folder}", f"{layout.MATTING_SET}/{split}/{folder}")
                     for split, folders in (("train", ("original", "mask")),
                                            ("validation", ("original", "mask", "trimap")))
                     for folder in folders)
_AGREEMENTS = "https://jizhizili.github.io/files/gfm_datasets_agreements/"
_CHECKPOINTS = (  # (name, backbone, rosta, Google Drive file id) as listed in the official README
    ("gfm_d121_tt", "d121", "TT", "1knbK5uU8AitE5OFpul9FXaQm47pZO0N8"),
    ("gfm_r34_tt", "r34", "TT", "1AdtoIdYTLsjXfVe_a50tin0cFwZMSz93"),
    ("gfm_r34_ft", "r34", "FT", "1heWT3fodV5so--tG6hoytB11OHBfhd1_"),
    ("gfm_r34_bt", "r34", "BT", "1vRWJtD8liZjb7GbNnmJCuO_xN4-bj-2l"),
    ("gfm_r34_2b_tt", "r34_2b", "TT", "1Y8dgOprcPWdUgHUPSdue0lkFAUVvW10Q"),
    ("gfm_r101_tt", "r101", "TT", "1oQMOfVkuxLujgFEQReWJM95chPlQBTiM"),
    ("gfm_d121_rim", "d121", "RIM", "1aMY5tJQ79IB-0NJ9WzcTu6ZOQTowiFWv"),
)

#: Every real source, by name. Checksums of the official releases are not published: they are
#: recorded in the lock file on first download (commit it) and verified on every later download.
REGISTRY: dict[str, Source] = {s.name: s for s in (
    Source("am2k", "AM-2k (2,000 animal images with alpha mattes)",
           urls=(_GDRIVE_FOLDER + "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA",), filename="am2k", archive="auto",
           marker="validation/trimap", layout=_AM2K_SPLITS,
           paper="Sect. 5.1 (1,800 train / 200 validation)", licence=_AGREEMENTS + "AM-2k_Dataset_Release_Agreement.pdf"),
    Source("bg20k", "BG-20k (20,000 clean high-resolution backgrounds)",
           urls=(_GDRIVE_FOLDER + "1ZBaMJxZtUNHIuGj8D8v3B9Adn8dbHwSS",), filename="bg20k", archive="auto",
           marker="testval", layout=(("train", layout.BG_CANDIDATES), ("testval", layout.BG_CANDIDATES)),
           paper="Sect. 4.2 (15k train / 5k testval); merged into bg_candidates so stage 2 re-verifies it",
           licence=_AGREEMENTS + "BG-20k_Dataset_Release_Agreement.pdf"),
    Source("coco", "MS COCO train2014 (backgrounds of COMP-COCO)",
           urls=("http://images.cocodataset.org/zips/train2014.zip",), filename="train2014.zip", archive="zip",
           marker="train2014", layout=(("train2014", layout.COCO),),
           paper="Sect. 5.2 COMP-COCO (Lin et al., 2014)", licence="https://cocodataset.org/#termsofuse"),
    Source("p3m10k", "P3M-10k (the public, face-blurred release of PM-10k)",
           urls=(_GDRIVE + "1LqUU7BZeiq8I3i5KxApdOJ2haXm-cEv1",), filename="P3M-10k.zip", archive="zip",
           marker="P3M-500-P",
           layout=(("train/blurred_image", f"{PORTRAIT_SET}/train/original"),
                   ("train/mask", f"{PORTRAIT_SET}/train/mask"),
                   ("P3M-500-P/blurred_image", f"{PORTRAIT_SET}/validation/original"),
                   ("P3M-500-P/mask", f"{PORTRAIT_SET}/validation/mask"),
                   ("P3M-500-P/trimap", f"{PORTRAIT_SET}/validation/trimap")),
           paper="Sect. 5.1 PM-10k (9,500 train / 500 validation); released as P3M-10k (9,421 / 500)",
           licence="https://jizhizili.github.io/files/p3m_dataset_agreement/P3M-10k_Dataset_Release_Agreement.pdf"),
    *(Source(name, f"GFM({backbone})-{rosta} trained on the AM-2k ORI-Track",
             urls=(_GDRIVE + file_id,), filename=f"{name}.pth", archive="auto",
             layout=(("*.pth", f"{PRETRAINED}/{name}.pth"),), kind="checkpoint", backbone=backbone, rosta=rosta,
             paper="Table 1 / Table 5 (released checkpoints)", licence="MIT (official repository)")
      for name, backbone, rosta, file_id in _CHECKPOINTS),
)}

#: The committed synthetic world (``data/``, built by :mod:`gfm.data.world`) seen as one more source.
EMBEDDED = Source("embedded", "embedded synthetic world (gfm.data.world)", urls=(), filename="data", archive="none",
                  marker="world.json",
                  layout=((layout.MATTING_SET, layout.MATTING_SET), (layout.BG_CANDIDATES, layout.BG_CANDIDATES),
                          (layout.BG_CANDIDATES_TRUTH, layout.BG_CANDIDATES_TRUTH), (layout.COCO, layout.COCO),
                          ("world.json", "world.json")),
                  paper="stand-in for AM-2k, BG-20k candidates and COCO")


def run_download(source: str = "embedded", datasets_out: str | os.PathLike = "artifacts/datasets", *,
                 data_root: str | os.PathLike = "data", downloads: str | os.PathLike = "downloads",
                 lock_file: str | os.PathLike = "data.lock.json",
                 sources: str | Sequence[str] = ("am2k", "bg20k", "coco"),
                 max_unpacked_bytes: int = 64 * 2**30, retries: int = 5, backoff: float = 1.0,
                 timeout: float = 60.0, strict: bool = True, link: bool = True,
                 metrics_out: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Stage 1: build ``datasets_out`` from the embedded world or from the paper's real sources.

    Parameters
    ----------
    source : ``embedded`` (link ``data_root`` into ``datasets_out``) or ``real`` (download ``sources``).
    datasets_out : the datasets folder (replaced atomically).
    data_root : the embedded world (``world.json`` must exist).
    downloads : cache of downloads and unpacked archives (real sources only).
    lock_file : JSON of the sha256 of every downloaded file (recorded on first download; commit it).
    sources : registry names, as a sequence or a comma-separated string (real sources only).
    max_unpacked_bytes : refuse archives whose members add up to more than this.
    retries, backoff, timeout : download retries after the first attempt, base delay in seconds of
        the exponential backoff, and the per-request timeout.
    strict : orphans, unreadable or size-mismatched pairs raise :class:`DataError` (else they are
        dropped with a warning).
    link : hard-link files when possible (copy otherwise).
    metrics_out : optional JSON of the counts for ``dvc metrics``.
    progress : show tqdm progress bars for downloads.

    Returns
    -------
    report : dict with ``source``, ``datasets``, ``counts`` (files per set/split), ``warnings``,
        ``converted``, ``dropped`` and, for real sources, ``downloads`` (name -> unpacked root).
    """
    if source == "embedded":
        world = Path(data_root)
        if not (world / "world.json").is_file():
            raise DataError(f"{world}: no world.json; build the embedded world first (gfm world build --out {world})")
        report = materialise({EMBEDDED.name: world}, datasets_out, strict=strict, link=link)
    elif source == "real":
        names = _names(sources)
        roots = download(names, downloads, lock_file=lock_file, retries=retries, backoff=backoff,
                         timeout=timeout, max_unpacked_bytes=max_unpacked_bytes, progress=progress)
        report = materialise(roots, datasets_out, strict=strict, link=link)
        report["downloads"] = {name: str(path) for name, path in roots.items()}
    else:
        raise ValueError(f"source must be 'embedded' or 'real', got {source!r}")
    report["source"] = source
    if metrics_out is not None:
        write_json(metrics_out, {"source": source, "counts": report["counts"], "warnings": len(report["warnings"]),
                                 "converted": report["converted"], "dropped": report["dropped"]})
    return report


def download(sources: str | Sequence[str | Source], downloads: str | os.PathLike = "downloads", *,
             lock_file: str | os.PathLike = "data.lock.json", retries: int = 5, backoff: float = 1.0,
             timeout: float = 60.0, max_unpacked_bytes: int = 64 * 2**30,
             progress: bool = True) -> dict[str, Path]:
    """Download, verify and unpack ``sources``; return each source's unpacked root.

    A download already present and matching its checksum is not fetched again; an archive already
    unpacked from the same bytes (same sha256) is not unpacked again. Files without a known sha256
    get one recorded in ``lock_file`` (written atomically), which later downloads verify.

    Returns
    -------
    roots : ``{name: path}`` — the unpacked folder (``<downloads>/<name>.unpacked``) or, for a
        source that is not an archive, the downloaded file itself.
    """
    downloads = Path(downloads)
    roots = {}
    for source in [s if isinstance(s, Source) else _registered(s) for s in _names(sources)]:
        shas = _download_source(source, downloads, lock_file, retries=retries, backoff=backoff,
                                timeout=timeout, progress=progress)
        files = list(shas)
        base = downloads / source.filename if files[0] != downloads / source.filename else downloads
        hashes = {p.relative_to(base).as_posix(): sha for p, sha in shas.items()}
        kinds = [(p, p.relative_to(base), _archive_kind(p, source.archive)) for p in files]
        if len(files) == 1 and kinds[0][2] == "none":
            roots[source.name] = files[0]
            continue
        roots[source.name] = _unpack(kinds, downloads / f"{source.name}.unpacked", hashes,
                                     max_unpacked_bytes=max_unpacked_bytes)
    return roots


def materialise(roots: Mapping[str, str | os.PathLike], datasets_out: str | os.PathLike, *,
                strict: bool = True, link: bool = True, registry: Mapping[str, Source] | None = None) -> dict:
    """Map unpacked sources into the datasets folder, validate every matting pair, swap it in.

    Parameters
    ----------
    roots : ``{source name: unpacked root}`` (as :func:`download` returns; ``embedded`` -> ``data/``).
    datasets_out : the datasets folder; built in a temporary sibling and renamed into place (an
        existing folder is replaced only once the new one is complete).
    strict : see :func:`validate_pairs`.
    link : hard-link files when possible (copy across file systems or when False).
    registry : sources by name (default: :data:`REGISTRY` plus :data:`EMBEDDED`).

    Returns
    -------
    report : ``counts`` (files per set/split), ``splits`` (per-split validation reports),
        ``warnings``, ``converted``, ``dropped``; also written to ``<datasets_out>/summary.json``.
    """
    registry = dict(registry) if registry is not None else {**REGISTRY, EMBEDDED.name: EMBEDDED}
    out = Path(datasets_out)
    with atomic_dir(out) as tmp:
        placed: dict[Path, Path] = {}
        for name, root in roots.items():
            if name not in registry:
                raise ValueError(f"roots: unknown source {name!r} (known: {', '.join(sorted(registry))})")
            _place(registry[name], Path(root), tmp, placed, link=link)
        report = {"datasets": str(out), "counts": {}, "splits": {}, "warnings": [], "converted": 0, "dropped": 0}
        for set_name in MATTING_SETS:
            for split in layout.SPLITS:
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
        for folder in (layout.BG_CANDIDATES, layout.COCO, PRETRAINED):
            if (tmp / folder).is_dir():
                report["counts"][folder] = sum(1 for p in (tmp / folder).iterdir() if not p.name.startswith("."))
        write_json(tmp / SUMMARY, report)
    return report


def validate_pairs(split_dir: str | os.PathLike, *, strict: bool = True, convert: bool = True) -> dict:
    """Check (and repair) every image/alpha pair of one split of a matting set, in place.

    Rules (the official AM-2k layout, Sect. 5.1): every ``original/<stem>.*`` has exactly one
    ``mask/<stem>.*`` of the same height and width and vice versa; both are readable; the mask is a
    single-channel 8-bit matte. Masks (and trimaps) stored as RGB, RGBA or 16-bit are converted to
    8-bit PNG with a warning (:func:`gfm.core.io.read_alpha` / :func:`gfm.core.io.alpha_conversion`); the
    converted file replaces the original one atomically (a hard link is replaced, not written
    through). Companions present (``trimap``, ``fg``, ``bg``) must match each image in name and size.

    Parameters
    ----------
    split_dir : ``<set>/<split>`` folder holding ``original/`` and ``mask/``.
    strict : raise :class:`DataError` on orphans, duplicate stems, unreadable files or size
        mismatches; when False such samples are removed from the split and reported as warnings.
    convert : convert non-8-bit-single-channel alpha maps (else only warn).

    Returns
    -------
    report : ``{"pairs", "converted", "dropped", "warnings", "sizes"}`` (``sizes``: ``[w, h]`` per pair).
    """
    split = layout.Split(Path(split_dir))
    for folder in (split.original, split.mask):
        if not folder.is_dir():
            raise DataError(f"{split.root}: missing folder {folder.name}/ (expected original/ and mask/)")
    problems: list[str] = []
    warns: list[str] = []
    duplicates: list[Path] = []
    images = _by_stem(split.original, problems, duplicates)
    masks = _by_stem(split.mask, problems, duplicates)
    folders = {"mask": masks}
    folders.update({c: _by_stem(getattr(split, c), problems, duplicates)
                    for c in COMPANIONS if getattr(split, c).is_dir()})
    bad: set[str] = set()
    for stem in sorted(set(masks) - set(images)):
        problems.append(f"{masks[stem]}: mask without an image in {split.original}")
        bad.add(stem)
    for kind, files in folders.items():
        for stem in sorted(set(files) - set(images) - bad):
            problems.append(f"{files[stem]}: {kind} without an image in {split.original}")
            bad.add(stem)
    converted = 0
    sizes = []
    for stem in sorted(images):
        issues = []
        try:
            height, width = read_image(images[stem]).shape[:2]
        except ImageError as error:
            issues.append(str(error))
            height = width = None
        for kind, files in folders.items():
            if stem not in files:
                issues.append(f"{images[stem]}: no {kind} named {stem}.* in {images[stem].parent.parent / kind}")
                continue
            path = files[stem]
            try:
                data = read_alpha(path) if kind in ALPHA_LIKE else read_image(path)
                note = alpha_conversion(path) if kind in ALPHA_LIKE else None
            except ImageError as error:
                issues.append(str(error))
                continue
            if width is not None and data.shape[:2] != (height, width):
                issues.append(f"{path}: {kind} is {data.shape[1]}x{data.shape[0]}, its image "
                              f"{images[stem].name} is {width}x{height}")
                continue
            if note:
                if convert:
                    target = path.with_suffix(".png")
                    write_image(target, data)
                    if target != path:
                        path.unlink()
                        files[stem] = target
                    converted += 1
                    warns.append(f"{path}: {kind} converted to 8-bit single-channel PNG ({note})")
                else:
                    warns.append(f"{path}: {kind} is not single-channel 8-bit ({note})")
        if issues:
            problems.extend(issues)
            bad.add(stem)
        else:
            sizes.append([width, height])
    if problems and strict:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{split.root}: {len(problems)} problem(s) (strict=True):\n  {shown}{more}")
    for stem in bad:
        for files in (images, *folders.values()):
            if stem in files and files[stem].exists():
                files[stem].unlink()
    warns.extend(f"dropped: {p}" for p in problems)
    for path in duplicates:
        path.unlink()
    return {"pairs": len(sizes), "converted": converted, "dropped": len(bad) + len(duplicates),
            "warnings": warns, "sizes": sizes}


def fetch_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None, retries: int = 5,
              backoff: float = 1.0, timeout: float = 60.0, chunk_size: int = 1 << 16, progress: bool = True,
              session=None) -> Path:
    """Download ``url`` to ``dest`` over HTTP(S): resumable, retried, verified, atomic.

    Bytes go to ``<dest>.part``; an interrupted transfer is resumed with an HTTP ``Range`` request
    (a server that ignores it and answers 200 restarts the file from zero). Connection errors,
    truncated bodies and 5xx answers are retried ``retries`` times with exponential backoff
    (``backoff * 2**attempt`` seconds); a 4xx answer fails at once. When ``sha256`` is given, a
    mismatch deletes the partial file and raises :class:`ChecksumError`; only verified bytes are
    renamed onto ``dest``.
    """
    import requests
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                status = response.status_code
                if status == 416 and offset:  # the partial file is already complete (or longer)
                    total = _content_range_total(response.headers.get("Content-Range", ""))
                    if total == offset:
                        break
                    part.unlink()
                    raise _Retry(f"HTTP 416 with a {offset}-byte partial file; restarting")
                if status >= 500:
                    raise _Retry(f"HTTP {status} {response.reason}")
                if status >= 400:
                    raise DownloadError(f"{url}: HTTP {status} {response.reason} (not retried)")
                start = offset if status == 206 else 0
                if status == 206 and _content_range_start(response.headers.get("Content-Range", "")) != offset:
                    start = 0
                    part.unlink()
                    raise _Retry(f"{url}: Content-Range does not start at byte {offset}; restarting")
                length = response.headers.get("Content-Length")
                total = start + int(length) if length is not None else None
                with open(part, "ab" if start else "wb") as f, \
                        tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=dest.name, disable=not progress, leave=False) as bar:
                    for chunk in response.iter_content(chunk_size):
                        f.write(chunk)
                        bar.update(len(chunk))
                if total is not None and part.stat().st_size != total:
                    raise _Retry(f"{url}: got {part.stat().st_size} of {total} bytes")
            break
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                _Retry) as error:
            if attempt >= retries:
                raise DownloadError(f"{url}: failed after {attempt + 1} attempt(s): {error}") from error
            time.sleep(backoff * 2 ** attempt)
            attempt += 1
    _verify_and_land(part, dest, sha256, url)
    return dest


def fetch_gdrive(file_id: str, dest: str | os.PathLike, *, sha256: str | None = None, retries: int = 5,
                 backoff: float = 1.0, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download the Google Drive file ``file_id`` to ``dest`` with gdown (resumable), verified, atomic."""
    import gdown
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    unverified = dest.with_name(dest.name + ".gdown")
    for attempt in range(retries + 1):
        try:
            result = gdown.download(id=file_id, output=str(unverified), quiet=not progress, resume=True)
            break
        except (requests.ConnectionError, requests.Timeout) as error:
            if attempt >= retries:
                raise DownloadError(f"{_GDRIVE}{file_id}: failed after {attempt + 1} attempt(s): {error}") from error
            time.sleep(backoff * 2 ** attempt)
    if result is None or not unverified.is_file():
        raise DownloadError(f"{_GDRIVE}{file_id}: Google Drive refused the download (permission, quota or a "
                            f"wrong id); download it by hand to {dest}")
    _verify_and_land(unverified, dest, sha256, f"{_GDRIVE}{file_id}")
    return dest


def fetch_gdrive_folder(folder_id: str, dest: str | os.PathLike, *, retries: int = 5, backoff: float = 1.0,
                        progress: bool = True) -> list[Path]:
    """Download the Google Drive folder ``folder_id`` into ``dest`` (built in ``<dest>.part``, then renamed).

    Checksums are verified by the caller per file (a folder's content is only known after listing).
    """
    import gdown
    import requests

    dest = Path(dest)
    if dest.is_dir():
        return sorted(p for p in dest.rglob("*") if p.is_file())
    part = dest.with_name(dest.name + ".part")
    part.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            result = gdown.download_folder(id=folder_id, output=str(part), quiet=not progress, resume=True)
            break
        except (requests.ConnectionError, requests.Timeout) as error:
            if attempt >= retries:
                raise DownloadError(f"{_GDRIVE_FOLDER}{folder_id}: failed after {attempt + 1} attempt(s): "
                                    f"{error}") from error
            time.sleep(backoff * 2 ** attempt)
    if not result:
        raise DownloadError(f"{_GDRIVE_FOLDER}{folder_id}: Google Drive listed no files (permission, quota or a "
                            f"wrong id); download the folder by hand into {dest}")
    os.replace(part, dest)
    return sorted(p for p in dest.rglob("*") if p.is_file())


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, *, kind: str = "auto",
                    max_unpacked_bytes: int = 64 * 2**30) -> Path:
    """Safely unpack a zip or tar archive into ``dest`` (built in a temporary sibling, then renamed).

    Refused before anything is written (:class:`UnsafeArchiveError`): absolute member paths, ``..``
    components, symbolic or hard links whose target leaves ``dest`` (or that go through another
    link), device files and FIFOs, and archives whose declared unpacked size exceeds
    ``max_unpacked_bytes`` (the bound is enforced again while writing).
    """
    archive = Path(archive)
    kind = _archive_kind(archive, kind)
    if kind == "none":
        raise UnsafeArchiveError(f"{archive}: not a zip or tar archive")
    dest = Path(dest)
    with atomic_dir(dest) as tmp:
        _extract_into(archive, kind, tmp, max_unpacked_bytes, _Budget(max_unpacked_bytes))
    return dest


def read_lock(lock_file: str | os.PathLike) -> dict:
    """The lock file as ``{"version": 1, "files": {"<source>/<file>": {"sha256", "size", "url"}}}``."""
    path = Path(lock_file)
    if not path.exists():
        return {"version": 1, "files": {}}
    try:
        lock = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error}); fix or delete the lock file") from error
    if not isinstance(lock, dict) or not isinstance(lock.get("files"), dict):
        raise DataError(f"{path}: expected a JSON object with a 'files' object")
    return lock


def registry_table(lock_file: str | os.PathLike | None = None) -> "pandas.DataFrame":
    """The real sources of :data:`REGISTRY` as a table (one row per source).

    Columns: ``name``, ``kind``, ``title``, ``backbone``, ``rosta``, ``archive``, ``url`` (first
    mirror), ``sha256`` (``registry``, ``lock`` when ``lock_file`` holds one, else ``first download``)
    and ``paper``.
    """
    import pandas as pd

    locked = {key.split("/", 1)[0] for key in read_lock(lock_file)["files"]} if lock_file else set()
    rows = [{"name": s.name, "kind": s.kind, "title": s.title, "backbone": s.backbone or "", "rosta": s.rosta or "",
             "archive": s.archive, "url": s.urls[0] if s.urls else "",
             "sha256": "registry" if s.sha256 else "lock" if s.name in locked else "first download",
             "paper": s.paper} for s in REGISTRY.values()]
    return pd.DataFrame(rows)


def summarise(datasets: str | os.PathLike) -> "pandas.DataFrame":
    """Counts per set and split of a datasets folder: one row per split or folder.

    Columns: ``set``, ``split``, ``images``, ``masks``, ``trimaps``, ``fg``, ``bg`` (file counts;
    0 where the folder is absent) and ``min_short_side``, ``median_width``, ``median_height``.
    """
    import pandas as pd

    rows = []
    for set_name, split, folders in _collections(Path(datasets)):
        counts = {k: (len(list_images(p)) if p is not None and p.is_dir() else 0) for k, p in folders.items()}
        sizes = np.array([s for s in (_image_size(p) for p in list_images(folders["images"])) if s] or [[0, 0]])
        rows.append({"set": set_name, "split": split, **counts,
                     "min_short_side": int(sizes.min(axis=1).min()),
                     "median_width": float(np.median(sizes[:, 0])), "median_height": float(np.median(sizes[:, 1]))})
    columns = ["set", "split", "images", "masks", "trimaps", "fg", "bg", "min_short_side", "median_width",
               "median_height"]
    return pd.DataFrame(rows, columns=columns)


def plot_samples(datasets: str | os.PathLike, split: str = "validation", n: int = 4, *,
                 set_name: str = layout.MATTING_SET, seed: int = 0, trimap_kernel: int = 25):
    """Grid of ``n`` samples of a split: image | alpha matte | trimap (one row per sample).

    Samples are drawn with ``numpy.random.default_rng(seed)``. A split without trimaps (the training
    split of AM-2k) shows :func:`gfm.core.trimap.trimap` of the matte (``trimap_kernel``), titled so.
    """
    import matplotlib.pyplot as plt

    from gfm.core.trimap import trimap

    split_dirs = layout.Split(Path(datasets) / set_name / split)
    names = split_dirs.names()
    if not names:
        raise DataError(f"{split_dirs.original}: no images to plot")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(names, size=min(n, len(names)), replace=False))
    fig, axes = plt.subplots(len(chosen), 3, figsize=(9, 2.4 * len(chosen)), squeeze=False)
    for row, name in zip(axes, chosen):
        alpha = read_alpha(split_dirs.mask_path(name))
        try:
            tri, tri_title = read_alpha(split_dirs.trimap_path(name)), "trimap"
        except FileNotFoundError:
            tri, tri_title = trimap(alpha, trimap_kernel), f"trimap (generated, k={trimap_kernel})"
        panels = ((read_image(split_dirs.image_path(name)), name), (alpha, "alpha"), (tri, tri_title))
        for ax, (img, title) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{set_name}/{split}: image | alpha | trimap")
    fig.tight_layout()
    return fig


def plot_resolutions(datasets: str | os.PathLike, bins: int = 20):
    """Histograms of the short side (pixels) of the images of every set and split (one panel each).

    Unreadable files (the embedded world plants a few corrupt background candidates) are skipped
    and counted in the panel title.
    """
    import matplotlib.pyplot as plt

    collections = list(_collections(Path(datasets)))
    if not collections:
        raise DataError(f"{datasets}: no matting set, bg_candidates or coco folder to plot")
    fig, axes = plt.subplots(1, len(collections), figsize=(3.2 * len(collections), 2.8), squeeze=False,
                             sharex=True)
    shorts = []
    for _, _, folders in collections:
        files = list_images(folders["images"])
        shorts.append((len(files), [min(s) for s in map(_image_size, files) if s]))
    values = [v for _, short in shorts for v in short] or [0]
    edges = np.linspace(min(values), max(values) + 1, bins + 1)
    for ax, (set_name, split, _), (n_files, short) in zip(axes[0], collections, shorts):
        ax.hist(short, bins=edges, color="tab:blue")
        skipped = n_files - len(short)
        ax.set_title(f"{set_name}/{split}" if split else set_name, fontsize=9)
        ax.set_xlabel("short side (px)" + (f"; {skipped} unreadable" if skipped else ""))
        ax.set_ylabel("images")
    fig.tight_layout()
    return fig


# --- helpers -------------------------------------------------------------------------------------

class _Retry(Exception):
    """A transient failure worth another attempt (5xx, truncated body, bad resume)."""


@dataclass
class _Budget:
    limit: int
    used: int = 0

    def take(self, n: int, where: Path) -> None:
        self.used += n
        if self.used > self.limit:
            raise UnsafeArchiveError(f"{where}: unpacked size exceeds max_unpacked_bytes={self.limit}")


def _names(sources: str | Sequence[str | Source]) -> list:
    if isinstance(sources, str):
        return [s.strip() for s in sources.split(",") if s.strip()]
    return list(sources)


def _registered(name: str) -> Source:
    if name not in REGISTRY:
        raise ValueError(f"sources: unknown source {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def _download_source(source: Source, downloads: Path, lock_file, *, retries, backoff, timeout,
                     progress) -> dict[Path, str]:
    """Download (or reuse) the files of ``source``; return ``{path: sha256}`` of the verified files."""
    if not source.urls:
        raise DownloadError(f"source {source.name!r} has no URL; place its files in {downloads} by hand")
    errors = []
    for url in source.urls:
        try:
            if url.startswith(_GDRIVE_FOLDER):
                folder = downloads / source.filename
                files = fetch_gdrive_folder(url[len(_GDRIVE_FOLDER):], folder, retries=retries, backoff=backoff,
                                            progress=progress)
                try:
                    return {path: _check_lock(path, source.name, path.relative_to(folder).as_posix(), url, None,
                                              lock_file) for path in files}
                except ChecksumError:
                    shutil.rmtree(folder)
                    raise
            dest = downloads / source.filename
            key = source.filename
            expected = source.sha256 or read_lock(lock_file)["files"].get(f"{source.name}/{key}", {}).get("sha256")
            if dest.is_file():
                if expected is None or sha256_file(dest) == expected:
                    return {dest: _check_lock(dest, source.name, key, url, source.sha256, lock_file)}
                warnings.warn(f"{dest}: sha256 differs from the expected one; downloading it again")
                dest.unlink()
            if url.startswith(_GDRIVE):
                fetch_gdrive(url[len(_GDRIVE):], dest, sha256=expected, retries=retries, backoff=backoff,
                             timeout=timeout, progress=progress)
            else:
                fetch_url(url, dest, sha256=expected, retries=retries, backoff=backoff, timeout=timeout,
                          progress=progress)
            return {dest: _check_lock(dest, source.name, key, url, source.sha256, lock_file)}
        except ChecksumError:
            raise
        except DownloadError as error:
            errors.append(str(error))
    raise DownloadError(f"source {source.name!r}: every URL failed:\n  " + "\n  ".join(errors))


def _check_lock(path: Path, name: str, key: str, url: str, expected: str | None, lock_file) -> str:
    """Verify ``path`` against the registry or lock file, record its sha256 when new, and return it."""
    lock = read_lock(lock_file)
    entry = lock["files"].get(f"{name}/{key}")
    actual = sha256_file(path)
    wanted = expected or (entry or {}).get("sha256")
    if wanted is not None and actual != wanted:
        path.unlink()
        raise ChecksumError(f"{path}: sha256 {actual} differs from the expected {wanted} "
                            f"({'registry' if expected else lock_file}); the file was deleted")
    if entry is None or entry.get("sha256") != actual:
        lock["files"][f"{name}/{key}"] = {"sha256": actual, "size": path.stat().st_size, "url": url}
        lock["files"] = dict(sorted(lock["files"].items()))
        write_json(lock_file, lock)
    return actual


def _verify_and_land(tmp: Path, dest: Path, sha256: str | None, url: str) -> None:
    if sha256 is not None:
        actual = sha256_file(tmp)
        if actual != sha256:
            tmp.unlink()
            raise ChecksumError(f"{url}: sha256 {actual} differs from the expected {sha256}; "
                                f"nothing was written to {dest}")
    os.replace(tmp, dest)


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


def _archive_kind(path: Path, declared: str) -> str:
    """``zip`` | ``tar`` | ``tar.gz`` | ``none`` (``auto``: sniffed; a torch zip checkpoint is ``none``)."""
    if declared != "auto":
        return declared
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        is_torch = any(n.endswith("/data.pkl") or n == "data.pkl" for n in names)
        return "none" if is_torch else "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"  # tarfile's "r:*" also opens compressed tars
    except OSError:
        pass
    return "none"


def _unpack(files: list[tuple[Path, Path, str]], dest: Path, hashes: dict, *, max_unpacked_bytes: int) -> Path:
    """Unpack archives (and place plain files) into ``dest``, unless already unpacked from the same bytes."""
    stamp = dest / _STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == hashes:
        return dest
    with atomic_dir(dest) as tmp:
        budget = _Budget(max_unpacked_bytes)
        for path, rel, kind in files:
            if kind == "none":
                _link_or_copy(path, tmp / rel, link=True)
            else:
                _extract_into(path, kind, tmp, max_unpacked_bytes, budget)
        write_json(tmp / _STAMP, hashes)
    return dest


def _extract_into(archive: Path, kind: str, dest: Path, max_declared: int, budget: _Budget) -> None:
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            links = {}
            for info in members:
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    links[info.filename.rstrip("/")] = zf.read(info).decode("utf-8", "replace")
            _check_members(archive, [(i.filename, _zip_type(i), links.get(i.filename.rstrip("/")), i.file_size)
                                     for i in members], max_declared)
            for info in members:
                target = dest / _safe_relative(archive, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif info.filename.rstrip("/") in links:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(links[info.filename.rstrip("/")], target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        _bounded_copy(src, dst, budget, archive)
    else:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            _check_members(archive, [(m.name, _tar_type(m), m.linkname or None, m.size) for m in members],
                           max_declared)
            for member in members:
                target = dest / _safe_relative(archive, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.issym():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(member.linkname, target)
                elif member.islnk():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(dest / _safe_relative(archive, member.linkname), target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    with src, open(target, "wb") as dst:
                        _bounded_copy(src, dst, budget, archive)


def _zip_type(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "device"  # character/block device, FIFO or socket (a plain zip sets no file-type bits)
    return "file"


def _tar_type(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "device"


def _check_members(archive: Path, members: list[tuple[str, str, str | None, int]], max_declared: int) -> None:
    """Refuse the whole archive if any member is unsafe (see :func:`extract_archive`)."""
    total = 0
    symlinks: set[str] = set()
    for name, kind, _, _ in members:
        if kind == "symlink":
            symlinks.add(posixpath.normpath(_safe_relative(archive, name).as_posix()))
    for name, kind, link, size in members:
        rel = _safe_relative(archive, name).as_posix()
        if kind == "device":
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a device file or FIFO")
        if _through_link(rel, symlinks):
            raise UnsafeArchiveError(f"{archive}: member {name!r} goes through a symbolic link in the archive")
        if kind in ("symlink", "hardlink"):
            if not link or link.startswith(("/", "\\")) or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} has an absolute target")
            base = posixpath.dirname(rel) if kind == "symlink" else ""
            resolved = posixpath.normpath(posixpath.join(base, link.replace("\\", "/")))
            if resolved == ".." or resolved.startswith("../") or _through_link(resolved, symlinks, inclusive=True):
                raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} points outside the archive "
                                         f"or through another link")
        total += max(int(size), 0)
        if total > max_declared:
            raise UnsafeArchiveError(f"{archive}: declared unpacked size exceeds max_unpacked_bytes={max_declared} "
                                     f"(at member {name!r})")


def _safe_relative(archive: Path, name: str) -> Path:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    if not parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty path")
    return Path(*parts)


def _through_link(rel: str, symlinks: set[str], inclusive: bool = False) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + (1 if inclusive else 0))]
    return any(p in symlinks for p in prefixes)


def _bounded_copy(src, dst, budget: _Budget, archive: Path, chunk_size: int = 1 << 20) -> None:
    for block in iter(lambda: src.read(chunk_size), b""):
        budget.take(len(block), archive)
        dst.write(block)


def _find_root(source: Source, root: Path, max_depth: int = 3) -> Path:
    """The official root inside ``root``: the shallowest folder holding ``source.marker``."""
    if source.marker is None or root.is_file():
        return root
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if (folder / source.marker).exists():
                return folder
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise DataError(f"{root}: no {source.marker!r} found within {max_depth} folder level(s); "
                    f"is this {source.title}?")


def _place(source: Source, root: Path, out: Path, placed: dict[Path, Path], *, link: bool) -> None:
    if not root.exists():
        raise DataError(f"{root}: source {source.name!r} not found")
    base = _find_root(source, root)
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
            _link_or_copy(src, target, link=link)


def _layout_files(base: Path, pattern: str) -> list[tuple[Path, Path]]:
    if base.is_file():
        return [(base, Path(base.name))] if fnmatch.fnmatch(base.name, pattern) else []
    if any(c in pattern for c in "*?["):
        return [(p, Path(p.name)) for p in sorted(base.rglob(pattern)) if p.is_file()]
    path = base / pattern
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        return [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    return []


def _link_or_copy(src: Path, dst: Path, *, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def _by_stem(folder: Path, problems: list[str], duplicates: list[Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            problems.append(f"{path}: same name as {files[path.stem].name} (one file per sample expected)")
            duplicates.append(path)
            continue
        files[path.stem] = path
    return files


def _collections(datasets: Path) -> Iterable[tuple[str, str, dict]]:
    """(set, split, {images, masks, trimaps, fg, bg}) for every matting split and background folder."""
    for set_name in MATTING_SETS:
        for split in layout.SPLITS:
            s = layout.Split(datasets / set_name / split)
            if s.original.is_dir():
                yield set_name, split, {"images": s.original, "masks": s.mask, "trimaps": s.trimap,
                                        "fg": s.fg, "bg": s.bg}
    for folder in (layout.BG_CANDIDATES, layout.COCO):
        if (datasets / folder).is_dir():
            yield folder, "", {"images": datasets / folder, "masks": None, "trimaps": None, "fg": None, "bg": None}


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable" here
        return None
