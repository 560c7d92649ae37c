"""What stage 1 can download: the datasets of the paper (Sect. 5.1 AM-2k / PM-10k, Sect. 4.1 BG-20k,
MS COCO for the COMP-COCO track of Sect. 5.1), the released GFM checkpoints (Table 1 / Table 5),
where each lands in the datasets folder, and the lock file that pins the sha256 of every file
downloaded once.

PM-10k was published as P3M-10k (Li et al., ACM MM 2021): the faces of its training images and of
its 500 validation images (P3M-500-P) are blurred, 9,421 training images instead of 9,500, plus a
second test set of 500 portraits whose faces are not blurred (P3M-500-NP). It lands as the matting set
:data:`PORTRAIT_SET` with the extra split :data:`PORTRAIT_NP_SPLIT`. BG-20k lands as released,
with its official split (:data:`BG20K_SET`).

The official releases publish no checksums (none of the official pages — the GFM and P3M READMEs,
cocodataset.org — gives one), so :data:`REGISTRY` pins none: the first verified download of a file
records its sha256 in the lock file (``data.lock.json``, commit it) and every later download is
checked against it; a sha256 given in :data:`REGISTRY` would win over the lock file.

A mirror of the downloads (a lab's copy of the datasets, on a web server or a mounted disk) is named
by the environment variable :data:`MIRROR_ENV` (``GFM_MIRROR=https://data.lab.org/gfm`` or
``GFM_MIRROR=/mnt/datasets/gfm``), a machine setting like ``TORCH_HOME``: it changes where the bytes
come from, never what lands. Each file of a source is tried first at ``<mirror>/<source>/<file>``
(:func:`mirror_location`; ``<source>/<file>`` is the file's key in the lock file: ``coco/train2014.zip``,
``gfm_r34_tt/gfm_r34_tt.pth``, ``am2k/<each file of the AM-2k Drive folder>``), then at the source's own
URLs, and is verified and locked like any download. Which files a Google Drive folder source holds
is read from the lock file; on a first download from the mirror's own lock file,
``<mirror>/data.lock.json`` (:data:`MIRROR_LOCK`: the lock file of the machine that filled the mirror,
copied beside its downloads), and for a mirror on disk without one from its folder ``<mirror>/<source>/``.
The sha256 that lock file records is checked on a first download too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gfm.core import layout
from gfm.core.io import write_json
from gfm.data.errors import DataError

if TYPE_CHECKING:
    import pandas

#: Folder of the released checkpoints inside the datasets folder (``<datasets>/pretrained/<name>.pth``).
PRETRAINED = "pretrained"
#: The portrait matting set (PM-10k, publicly released as P3M-10k) inside the datasets folder.
PORTRAIT_SET = "pm10k"
#: The portrait set's second test split: P3M-500-NP (faces not blurred); ``validation`` is P3M-500-P.
PORTRAIT_NP_SPLIT = "validation_np"
#: The released BG-20k inside the datasets folder: ``<datasets>/bg20k/{train,testval}``, its official
#: split kept (stage 2 passes it through; it builds a set only from candidate folders).
BG20K_SET = "bg20k"
#: The official split folders of BG-20k (15k / 5k, Sect. 4.1).
BG20K_SPLITS = ("train", "testval")
#: The splits of each matting set of the datasets folder (validated pair by pair, summarised and plotted).
MATTING_SPLITS = {layout.MATTING_SET: layout.SPLITS, PORTRAIT_SET: (*layout.SPLITS, PORTRAIT_NP_SPLIT)}
#: The real-image benchmarks a model is evaluated on (the validation sets of Sect. 5.1, used by both
#: benchmark tracks of Sect. 5.1, ORI and COMP): name -> (split folder relative to the datasets
#: folder, title).
BENCHMARKS = {
    "am2k": (f"{layout.MATTING_SET}/validation", "AM-2k validation (200 animal images)"),
    "p3m500p": (f"{PORTRAIT_SET}/validation",
                "P3M-500-P (500 portraits, faces blurred; stands in for PM-10k's validation)"),
    "p3m500np": (f"{PORTRAIT_SET}/{PORTRAIT_NP_SPLIT}", "P3M-500-NP (500 portraits, faces not blurred)"),
}
#: How a download is unpacked (``auto``: sniffed; see :func:`gfm.data.archive.archive_kind`).
ARCHIVES = ("zip", "tar", "tar.gz", "none", "auto")
#: URL prefixes of a Google Drive file and a Google Drive folder (downloaded with gdown).
GDRIVE, GDRIVE_FOLDER = "gdrive:", "gdrive-folder:"
#: The environment variable naming a mirror of the downloads (a base URL or a local folder).
MIRROR_ENV = "GFM_MIRROR"
#: The lock file a mirror holds at its root: the files (and sha256) of its sources.
MIRROR_LOCK = "data.lock.json"


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
    layout : ``(source, destination)`` pairs: ``source`` relative to the official root (a folder,
        a file, or a glob pattern), ``destination`` relative to the datasets folder (a folder, or a
        file path when it has a suffix and exactly one file matches).
    sha256 : expected checksum of ``filename`` when known; otherwise it is recorded on first download
        in the lock file (for a folder: one entry per downloaded file).
    marker : path (relative to the official root) whose presence locates the official root inside
        the unpacked tree (which may add wrapper folders such as ``AM-2k/``).
    kind : ``dataset`` | ``checkpoint``.
    backbone, rosta : for checkpoints, the GFM variant (``r34``, ``r34_2b``, ``d121``, ``r101``;
        ``TT``, ``FT``, ``BT``, ``RIM``).
    paper : where the paper introduces or uses it.
    licence : the release agreement or licence to accept before downloading.
    page : the official page that documents the download (where to get it by hand).
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
    page: str = ""

    def __post_init__(self):
        if self.archive not in ARCHIVES:
            raise ValueError(f"source {self.name!r}: archive must be one of {ARCHIVES}, got {self.archive!r}")
        if self.kind not in ("dataset", "checkpoint"):
            raise ValueError(f"source {self.name!r}: kind must be 'dataset' or 'checkpoint', got {self.kind!r}")
        for url in self.urls:
            if not url.startswith(("http://", "https://", GDRIVE, GDRIVE_FOLDER)):
                raise ValueError(f"source {self.name!r}: unsupported URL {url!r} "
                                 f"(expected http(s)://, {GDRIVE}<id> or {GDRIVE_FOLDER}<id>)")


_AM2K_SPLITS = tuple((f"{split}/{folder}", f"{layout.MATTING_SET}/{split}/{folder}")
                     for split, folders in (("train", ("original", "mask")),
                                            ("validation", ("original", "mask", "trimap")))
                     for folder in folders)
#: P3M-10k's official layout (github.com/JizhiziLi/P3M; the P3M-Net repository's config) -> ours.
_P3M_SPLITS = (("train/blurred_image", "train/original"), ("train/mask", "train/mask"),
               *((f"validation/P3M-500-P/{folder}", f"validation/{ours}")
                 for folder, ours in (("blurred_image", "original"), ("mask", "mask"), ("trimap", "trimap"))),
               *((f"validation/P3M-500-NP/{folder}", f"{PORTRAIT_NP_SPLIT}/{ours}")
                 for folder, ours in (("original_image", "original"), ("mask", "mask"), ("trimap", "trimap"))))
_GFM_README = "https://github.com/JizhiziLi/GFM#readme"
_AGREEMENTS = "https://jizhizili.github.io/files/gfm_datasets_agreements/"
#: The released checkpoints: (name, backbone, rosta, Google Drive file id) as listed in the official README.
CHECKPOINTS = (
    ("gfm_d121_tt", "d121", "TT", "1knbK5uU8AitE5OFpul9FXaQm47pZO0N8"),
    ("gfm_r34_tt", "r34", "TT", "1AdtoIdYTLsjXfVe_a50tin0cFwZMSz93"),
    ("gfm_r34_ft", "r34", "FT", "1heWT3fodV5so--tG6hoytB11OHBfhd1_"),
    ("gfm_r34_bt", "r34", "BT", "1vRWJtD8liZjb7GbNnmJCuO_xN4-bj-2l"),
    ("gfm_r34_2b_tt", "r34_2b", "TT", "1Y8dgOprcPWdUgHUPSdue0lkFAUVvW10Q"),
    ("gfm_r101_tt", "r101", "TT", "1oQMOfVkuxLujgFEQReWJM95chPlQBTiM"),
    ("gfm_d121_rim", "d121", "RIM", "1aMY5tJQ79IB-0NJ9WzcTu6ZOQTowiFWv"),
)

#: Every real source, by name, each over HTTPS or Google Drive. Checksums of the official releases
#: are not published (so none is pinned here): they are recorded in the lock file on first download
#: (commit it) and verified on every later download.
REGISTRY: dict[str, Source] = {s.name: s for s in (
    Source("am2k", "AM-2k (2,000 animal images with alpha mattes)",
           urls=(GDRIVE_FOLDER + "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA",), filename="am2k", archive="auto",
           marker="validation/trimap", layout=_AM2K_SPLITS,
           paper="Sect. 5.1 (1,800 train / 200 validation)",
           licence=_AGREEMENTS + "AM-2k_Dataset_Release_Agreement.pdf", page=_GFM_README),
    Source("bg20k", "BG-20k (20,000 clean high-resolution backgrounds)",
           urls=(GDRIVE_FOLDER + "1ZBaMJxZtUNHIuGj8D8v3B9Adn8dbHwSS",), filename="bg20k", archive="auto",
           marker="testval", layout=tuple((split, f"{BG20K_SET}/{split}") for split in BG20K_SPLITS),
           paper="Sect. 4.1 (15k train / 5k testval); placed as released, its split kept",
           licence=_AGREEMENTS + "BG-20k_Dataset_Release_Agreement.pdf", page=_GFM_README),
    Source("coco", "MS COCO train2014 (backgrounds of COMP-COCO)",
           urls=("https://images.cocodataset.org/zips/train2014.zip",), filename="train2014.zip", archive="zip",
           marker="train2014", layout=(("train2014", layout.COCO),),
           paper="Sect. 5.1 COMP-COCO (Lin et al., 2014)", licence="https://cocodataset.org/#termsofuse",
           page="https://cocodataset.org/#download"),
    Source("p3m10k", "P3M-10k (the public, face-blurred release of PM-10k)",
           urls=(GDRIVE + "1LqUU7BZeiq8I3i5KxApdOJ2haXm-cEv1",), filename="P3M-10k.zip", archive="zip",
           marker="validation/P3M-500-NP",
           layout=tuple((official, f"{PORTRAIT_SET}/{ours}") for official, ours in _P3M_SPLITS),
           paper="Sect. 5.1 PM-10k (9,500 train / 500 validation); released as P3M-10k "
                 "(9,421 train / P3M-500-P / P3M-500-NP)",
           licence="https://jizhizili.github.io/files/p3m_dataset_agreement/P3M-10k_Dataset_Release_Agreement.pdf",
           page="https://github.com/JizhiziLi/P3M#readme"),
    *(Source(name, f"GFM({backbone})-{rosta} trained on the AM-2k ORI-Track",
             urls=(GDRIVE + file_id,), filename=f"{name}.pth", archive="auto",
             layout=(("*.pth", f"{PRETRAINED}/{name}.pth"),), kind="checkpoint", backbone=backbone, rosta=rosta,
             paper="Table 1 / Table 5 (released checkpoints)", licence="MIT (official repository)", page=_GFM_README)
      for name, backbone, rosta, file_id in CHECKPOINTS),
)}

#: The committed synthetic world (``data/``, built by :mod:`gfm.data.world`) seen as one more source.
EMBEDDED = Source("embedded", "embedded synthetic world (gfm.data.world)", urls=(), filename="data", archive="none",
                  marker="world.json",
                  layout=((layout.MATTING_SET, layout.MATTING_SET), (layout.BG_CANDIDATES, layout.BG_CANDIDATES),
                          (layout.BG_CANDIDATES_TRUTH, layout.BG_CANDIDATES_TRUTH), (layout.COCO, layout.COCO),
                          ("world.json", "world.json")),
                  paper="stand-in for AM-2k, BG-20k candidates and COCO")


def sources(names: str | Sequence[str | Source]) -> list[Source]:
    """Registry sources by name (a sequence, or a comma-separated string); a :class:`Source` passes as is."""
    if isinstance(names, str):
        names = [s.strip() for s in names.split(",") if s.strip()]
    found = []
    for name in names:
        if not isinstance(name, Source) and name not in REGISTRY:
            raise ValueError(f"sources: unknown source {name!r} (known: {', '.join(REGISTRY)})")
        found.append(name if isinstance(name, Source) else REGISTRY[name])
    return found


def mirror(base: str | None = None) -> str | None:
    """The mirror of the downloads: ``base``, else the environment variable :data:`MIRROR_ENV`; None
    when neither names one (unset or empty). An ``http(s)://`` URL is kept (without a trailing ``/``);
    a ``file://`` URL or a path is a local folder, made absolute."""
    base = (os.environ.get(MIRROR_ENV, "") if base is None else base).strip()
    if not base:
        return None
    if base.startswith(("http://", "https://")):
        return base.rstrip("/")
    return str(Path(base.removeprefix("file://")).expanduser().absolute())


def mirror_location(base: str, key: str) -> str:
    """Where the mirror ``base`` (:func:`mirror`) holds ``key``, a lock-file key ``<source>/<file>``
    (or :data:`MIRROR_LOCK`): ``<base>/<key>``, a URL or a path like ``base``."""
    if base.startswith(("http://", "https://")):
        return f"{base}/{key}"
    return str(Path(base, key))


def read_lock(lock_file: str | os.PathLike) -> dict:
    """The lock file as ``{"version": 1, "files": {"<source>/<file>": {"sha256", "size", "url"}}}``."""
    path = Path(lock_file)
    if not path.exists():
        return {"version": 1, "files": {}}
    return parse_lock(path.read_text(), path)


def parse_lock(text: str, where: str | os.PathLike) -> dict:
    """The lock file ``where`` (a path or a URL, named in errors) from its ``text``: see :func:`read_lock`."""
    try:
        lock = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error}); fix or delete the lock file") from error
    if not isinstance(lock, dict) or not isinstance(lock.get("files"), dict):
        raise DataError(f"{where}: expected a JSON object with a 'files' object")
    return lock


def locked(lock_file: str | os.PathLike | dict, name: str) -> dict[str, str]:
    """``{file: sha256}`` the lock file (a path, or the lock as :func:`read_lock` returns it) holds for
    source ``name`` (file relative to its download)."""
    lock = lock_file if isinstance(lock_file, dict) else read_lock(lock_file)
    entries = ((_lock_key(key), entry) for key, entry in lock["files"].items())
    return {file: entry.get("sha256") for (source, file), entry in entries if source == name and file}


def record_lock(lock_file: str | os.PathLike, name: str, key: str, *, sha256: str, size: int, url: str) -> None:
    """Record the sha256 of file ``key`` of source ``name`` when the lock file has none or another one;
    the lock file is rewritten atomically, entries sorted."""
    lock = read_lock(lock_file)
    if lock["files"].get(f"{name}/{key}", {}).get("sha256") != sha256:
        lock["files"][f"{name}/{key}"] = {"sha256": sha256, "size": size, "url": url}
        lock["files"] = dict(sorted(lock["files"].items()))
        write_json(lock_file, lock)


def forget_lock(lock_file: str | os.PathLike, name: str) -> list[str]:
    """Delete every entry of source ``name`` from the lock file; return the keys deleted."""
    lock = read_lock(lock_file)
    gone = [key for key in lock["files"] if _lock_key(key)[0] == name]
    if gone:
        lock["files"] = {k: v for k, v in lock["files"].items() if k not in gone}
        write_json(lock_file, lock)
    return gone


def registry_table(lock_file: str | os.PathLike | None = None) -> pandas.DataFrame:
    """The real sources of :data:`REGISTRY` as a table (one row per source).

    Columns: ``name``, ``kind``, ``title``, ``backbone``, ``rosta``, ``archive``, ``url`` (first
    mirror), ``sha256`` (what a download is verified against: ``registry``, ``lock`` when
    ``lock_file`` holds one, else ``first download``), ``official_sha256`` (``pinned in the registry``,
    or ``none published``: the release documents no checksum), ``paper``, ``licence`` (the agreement
    to accept before downloading) and ``page`` (the official page).
    """
    import pandas as pd

    in_lock = {_lock_key(key)[0] for key in read_lock(lock_file)["files"]} if lock_file else set()
    rows = [{"name": s.name, "kind": s.kind, "title": s.title, "backbone": s.backbone or "", "rosta": s.rosta or "",
             "archive": s.archive, "url": s.urls[0] if s.urls else "",
             "sha256": "registry" if s.sha256 else "lock" if s.name in in_lock else "first download",
             "official_sha256": "pinned in the registry" if s.sha256 else "none published",
             "paper": s.paper, "licence": s.licence, "page": s.page} for s in REGISTRY.values()]
    return pd.DataFrame(rows)


def _lock_key(key: str) -> tuple[str, str]:
    """``(source, file)`` of a lock-file key ``<source>/<file>`` (file ``""`` when there is no ``/``)."""
    source, _, file = key.partition("/")
    return source, file
