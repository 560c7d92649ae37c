"""The real-image benchmarks the evaluate stage scores (Sect. 5.1): AM-2k and PM-10k's validation sets.

``evaluate.benchmarks`` names them (:data:`gfm.data.registry.BENCHMARKS`: ``am2k``, ``p3m500p``,
``p3m500np``; PM-10k was released as P3M-10k, whose two test sets are P3M-500-P, faces blurred,
and P3M-500-NP). Each is a validation split of the datasets folder (``data.datasets``), landed
by the download stage from the ``data.real_sources`` entry that provides it.

Output layout: AM-2k, the benchmark of Tables 1 and 3-6, keeps the top level of
``evaluate.out`` (``<out>/<experiment>/s<seed>/``, ``<out>/baselines/``, ``runs.csv``, ...); every
other benchmark gets the same tree under ``<out>/benchmarks/<name>/`` (:func:`benchmark_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gfm.core.layout import MATTING_SET, Split
from gfm.data.registry import BENCHMARKS, REGISTRY
from gfm.evaluate.files import validation_split

__all__ = ["PRIMARY", "BENCHMARKS_DIR", "Benchmark", "benchmarks_of", "benchmark_folder", "providers"]

#: The benchmark of the paper's Tables 1 and 3-6 (AM-2k): the top level of ``evaluate.out``.
PRIMARY = "am2k"
#: Folder of ``evaluate.out`` holding the other benchmarks, one sub-folder each.
BENCHMARKS_DIR = "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark to score: its registry ``name``, ``title`` and validation ``split``."""

    name: str
    title: str
    split: Split

    def folder(self, evaluation_dir: str | Path) -> Path:
        """Where its results go under ``evaluation_dir`` (:func:`benchmark_folder`)."""
        return benchmark_folder(evaluation_dir, self.name)

    def describe(self) -> dict:
        """Its entry of ``<out>/protocol.json``: name, title, the split read, the output folder."""
        return {"name": self.name, "title": self.title, "split": str(self.split.root),
                "out": str(benchmark_folder("", self.name))}


def benchmarks_of(params) -> list[Benchmark]:
    """The benchmarks of ``evaluate.benchmarks`` (gfm.core.config.Params), in that order, each checked
    to be on disk with images.

    AM-2k is ``<data.datasets>/am2k/validation``, or the embedded world's (``data.data_root``)
    before stage 1 has materialised it. A benchmark missing from ``data.datasets`` is a
    FileNotFoundError naming the folder and the ``data.real_sources`` entry that provides it; a
    list without am2k a ValueError (Tables 5-6, the figures and the report's main tables are AM-2k's).
    """
    names = list(params.evaluate.benchmarks)
    if PRIMARY not in names:
        raise ValueError(f"evaluate.benchmarks {names}: must include {PRIMARY!r} (Tables 1 and 3-6, Table 5's "
                         f"protocol and the figures are measured on AM-2k); add it")
    found = []
    for name in names:
        if name not in BENCHMARKS:
            raise ValueError(f"evaluate.benchmarks: unknown benchmark {name!r} (expected one of {', '.join(BENCHMARKS)})")
        relative, title = BENCHMARKS[name]
        folder = Path(params.data.datasets) / relative
        if name == PRIMARY and not (folder / "original").is_dir():
            world = Path(params.data.data_root) / MATTING_SET / "validation"
            folder = world if (world / "original").is_dir() else folder
        if not (folder / "original").is_dir():
            sources = providers(name)
            raise FileNotFoundError(
                f"{folder}: benchmark {name!r} ({title}) is not on disk (no original/ folder). It is provided by "
                f"data.real_sources entry {' or '.join(repr(s) for s in sources)} (data.source: real): add it there "
                f"and run the download stage, or remove {name!r} from evaluate.benchmarks")
        split = validation_split(folder)
        if not split.names():
            raise FileNotFoundError(f"{split.original}: benchmark {name!r} ({title}) has no images")
        found.append(Benchmark(name, title, split))
    return found


def benchmark_folder(evaluation_dir: str | Path, name: str) -> Path:
    """The results folder of benchmark ``name``: ``evaluation_dir`` itself for :data:`PRIMARY`,
    else ``<evaluation_dir>/benchmarks/<name>``."""
    root = Path(evaluation_dir)
    return root if name == PRIMARY else root / BENCHMARKS_DIR / name


def providers(name: str) -> list[str]:
    """The registry sources (``data.real_sources`` entries) that land benchmark ``name``'s folder."""
    relative = BENCHMARKS[name][0]
    return [source.name for source in REGISTRY.values() if source.kind == "dataset"
            and any(relative == dest or relative.startswith(dest + "/") or dest.startswith(relative + "/")
                    for _, dest in source.layout)]
